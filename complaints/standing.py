"""How a seller's standing changes: pure functions over `StandingState`, shared by the standing
workflow and its tests. Points accumulate per class in a counting period (which a class's
reset ends); crossing a threshold imposes its penalty once per period; an upheld appeal takes
the violation's points back and ends the penalties they no longer reach."""

from datetime import datetime

from complaints.models import CountedViolation, Penalty, StandingState, StandingSummary, StandingView, Violation
from complaints.policy import StandingPolicy, ViolationClass


def standing_id(seller_id: str) -> str:
    return f"standing-{seller_id}"


def start_periods(state: StandingState, policy: StandingPolicy, now: datetime) -> None:
    """A new standing counts every class from now."""
    for violation_class in policy.classes:
        state.last_reset.setdefault(violation_class, now)


def next_reset(state: StandingState, policy: StandingPolicy, violation_class: ViolationClass) -> datetime | None:
    rule = policy.classes[violation_class]
    since = state.last_reset.get(violation_class)
    return rule.reset.next_after(since) if rule.reset is not None and since is not None else None


def apply_resets(state: StandingState, policy: StandingPolicy, now: datetime) -> list[ViolationClass]:
    """End every counting period whose reset instant has come (each at its own instant, even
    when the worker wakes late): the class's points go to zero; running penalties run on."""
    reset = []
    for violation_class in policy.classes:
        while (due := next_reset(state, policy, violation_class)) is not None and due <= now:
            state.last_reset[violation_class] = due
            state.points[violation_class] = 0
            state.imposed[violation_class] = []
            for violation in state.violations:
                if violation.violation_class == violation_class and not violation.removed:
                    violation.reset = True
            reset.append(violation_class)
    return reset


def record(state: StandingState, violation: Violation, policy: StandingPolicy, now: datetime) -> list[Penalty]:
    """Count a violation once (a redelivery changes nothing); the penalties it imposes."""
    if violation.violation_id in state.delivered_ids:
        return []
    state.delivered_ids = [*state.delivered_ids, violation.violation_id][-policy.delivered_ids_kept:]
    state.violations.append(CountedViolation(**violation.model_dump()))
    state.violations_total += 1
    before = state.points.get(violation.violation_class, 0)
    state.points[violation.violation_class] = before + violation.points
    started = []
    rule = policy.classes[violation.violation_class]
    imposed = state.imposed.setdefault(violation.violation_class, [])
    for threshold, tier in rule.crossed(before, before + violation.points):
        if threshold in imposed:
            continue
        imposed.append(threshold)
        state.penalties_total += 1
        penalty = Penalty(
            penalty_id=f"{standing_id(state.seller_id)}-{violation.violation_class.value}{threshold}-"
                       f"{state.penalties_total}",
            violation_class=violation.violation_class, threshold=threshold, measures=list(tier.measures),
            started_at=now, ends_at=now + tier.duration if tier.duration is not None else None)
        state.active.append(penalty)
        started.append(penalty)
    _trim(state, policy)
    return started


def withdraw(state: StandingState, violation_id: str, policy: StandingPolicy, now: datetime) -> list[Penalty]:
    """An upheld appeal: take the violation's points back; the penalties that no longer hold end."""
    violation = next((v for v in state.violations if v.violation_id == violation_id and not v.removed), None)
    if violation is None:
        return []
    violation.removed = True
    if violation.reset:
        return []  # counted in a period already over: its points are gone anyway
    points = state.points[violation.violation_class] - violation.points
    state.points[violation.violation_class] = points
    state.imposed[violation.violation_class] = [t for t in state.imposed.get(violation.violation_class, [])
                                                if t <= points]
    period_start = state.last_reset.get(violation.violation_class)
    return _end(state, lambda p: p.violation_class == violation.violation_class and p.threshold > points
                and (period_start is None or p.started_at >= period_start), now, "appeal", policy)


def expire(state: StandingState, policy: StandingPolicy, now: datetime) -> list[Penalty]:
    return _end(state, lambda p: p.ends_at is not None and p.ends_at <= now, now, "expired", policy)


def _end(state: StandingState, ends, now: datetime, reason: str, policy: StandingPolicy) -> list[Penalty]:
    ended = [p.model_copy(update={"ended_at": now, "end_reason": reason}) for p in state.active if ends(p)]
    if ended:
        gone = {p.penalty_id for p in ended}
        state.active = [p for p in state.active if p.penalty_id not in gone]
        state.ended = [*state.ended, *ended][-policy.violations_in_view:]
    return ended


def next_wake(state: StandingState, policy: StandingPolicy) -> datetime | None:
    """The next instant a timer must change the standing: a penalty's end or a class's reset."""
    instants = [p.ends_at for p in state.active if p.ends_at is not None]
    instants += [due for c in policy.classes if (due := next_reset(state, policy, c)) is not None]
    return min(instants, default=None)


def _trim(state: StandingState, policy: StandingPolicy) -> None:
    """Keep what still counts, and the newest of the rest: the state stays small for years."""
    keep = policy.violations_in_view
    newest = {id(v) for v in state.violations[-keep:]}
    state.violations = [v for v in state.violations if id(v) in newest or not (v.removed or v.reset)]


def view(state: StandingState, policy: StandingPolicy) -> StandingView:
    return StandingView(
        seller_id=state.seller_id, policy_version=policy.version,
        points={c: state.points.get(c, 0) for c in policy.classes},
        under_penalty=bool(state.active), active_penalties=state.active, ended_penalties=state.ended,
        violations=state.violations[-policy.violations_in_view:], violations_total=state.violations_total,
        next_reset={c: next_reset(state, policy, c) for c in policy.classes}, revision=state.revision)


def summary(state: StandingState) -> StandingSummary:
    timed = [p.ends_at for p in state.active if p.ends_at is not None]
    return StandingSummary(
        seller_id=state.seller_id, revision=state.revision,
        points_a=state.points.get(ViolationClass.A, 0), points_b=state.points.get(ViolationClass.B, 0),
        under_penalty=bool(state.active), measures=sorted({m for p in state.active for m in p.measures}),
        penalty_ends_at=max(timed, default=None))
