"""The policy as data: windows, the working-day calendar and the versioned ``Policy``.

Everything here is imported by Temporal workflow code, so it is deterministic and
pure: no I/O, no clock, no tz database (a calendar has a fixed UTC offset), no
randomness. All models are frozen pydantic v2 models that round-trip through JSON,
because each workflow's input records its ``Policy`` (whole, or as the ref of a shipped
version: ``policy.versions``) and a replay must see exactly what the case saw.

Datetimes passed in must be timezone-aware (Temporal's workflow clock is aware UTC); a naive
datetime is rejected with ``ValueError`` rather than guessed at. Returned instants
are aware UTC datetimes.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Self

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Window", "WorkingCalendar", "CaseLimits", "Milestone", "ServiceLevel", "Urgency", "Policy"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. the workflow clock), got naive {value!r}")


class Window(BaseModel):
    """A span of time: EITHER an exact ``duration`` OR ``working_days`` on the policy's
    calendar. Exactly one is set, and it is positive."""

    model_config = _FROZEN

    duration: timedelta | None = None
    working_days: int | None = None

    @model_validator(mode="after")
    def _exactly_one_positive(self) -> Self:
        if (self.duration is None) == (self.working_days is None):
            raise ValueError("a Window needs exactly one of 'duration' or 'working_days'")
        if self.duration is not None and self.duration <= timedelta(0):
            raise ValueError(f"Window duration must be positive, got {self.duration}")
        if self.working_days is not None and self.working_days <= 0:
            raise ValueError(f"Window working_days must be positive, got {self.working_days}")
        return self

    @classmethod
    def seconds(cls, n: float) -> Window:
        return cls(duration=timedelta(seconds=n))

    @classmethod
    def minutes(cls, n: float) -> Window:
        return cls(duration=timedelta(minutes=n))

    @classmethod
    def hours(cls, n: float) -> Window:
        return cls(duration=timedelta(hours=n))

    @classmethod
    def days(cls, n: float) -> Window:
        """``n`` calendar days as an exact duration (24 h each), weekends included."""
        return cls(duration=timedelta(days=n))

    @classmethod
    def working(cls, n: int) -> Window:
        """``n`` working days on the policy's calendar."""
        return cls(working_days=n)

    @property
    def is_working_days(self) -> bool:
        return self.working_days is not None


class WorkingCalendar(BaseModel):
    """Which days are working days, in a fixed-offset local time.

    - ``weekend`` holds ISO weekday numbers (Monday = 1 ... Sunday = 7), default
      Saturday and Sunday ``(6, 7)``.
    - ``holidays`` are days off that would otherwise be working days.
    - ``make_up_workdays`` (调休) are weekend days that are working days.
    - ``covers_from``..``covers_to`` (inclusive) is the range the published arrangement
      (放假安排 with its 调休) is known for.
    - ``provisional_holidays`` are days off after ``covers_to`` known before the
      arrangement is published: the statutory holidays (全国年节及纪念日放假办法) that
      fall on a weekday. They are off whatever the arrangement says, but it may add more
      days off and make-up workdays, so a count reaching past ``covers_to`` is provisional
      (``counts_uncovered``) and is marked as such on the deadlines it sets.
    - Elsewhere outside coverage only ``weekend`` applies: a date beyond the data never
      crashes.
    """

    model_config = _FROZEN

    name: str
    utc_offset: timedelta = timedelta(0)
    weekend: tuple[int, ...] = (6, 7)
    holidays: tuple[date, ...] = ()
    make_up_workdays: tuple[date, ...] = ()
    covers_from: date
    covers_to: date
    provisional_holidays: tuple[date, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not timedelta(hours=-24) < self.utc_offset < timedelta(hours=24):
            raise ValueError(f"utc_offset must be strictly between -24h and +24h, got {self.utc_offset}")
        bad = [d for d in self.weekend if not 1 <= d <= 7]
        if bad:
            raise ValueError(f"weekend holds ISO weekdays 1 (Monday) .. 7 (Sunday), got {bad}")
        if len(set(self.weekend)) == 7:
            raise ValueError("weekend cannot cover all seven days: there would be no working days")
        if self.covers_from > self.covers_to:
            raise ValueError(f"covers_from {self.covers_from} is after covers_to {self.covers_to}")
        both = sorted(set(self.holidays) & set(self.make_up_workdays))
        if both:
            raise ValueError(f"dates are both holidays and make-up workdays: {both}")
        outside = sorted(
            d for d in (*self.holidays, *self.make_up_workdays) if not self.covers_from <= d <= self.covers_to
        )
        if outside:
            raise ValueError(
                f"dates outside covers_from..covers_to ({self.covers_from}..{self.covers_to}) "
                f"would be ignored: {outside}"
            )
        covered = sorted(d for d in self.provisional_holidays if d <= self.covers_to)
        if covered:
            raise ValueError(f"provisional holidays must come after covers_to {self.covers_to}: {covered}")
        return self

    @property
    def tz(self) -> timezone:
        """The calendar's fixed-offset local time zone (no DST)."""
        return timezone(self.utc_offset, self.name)

    def covers(self, d: date) -> bool:
        return self.covers_from <= d <= self.covers_to

    def is_working_day(self, d: date) -> bool:
        """Whether the local calendar date ``d`` is a working day.

        Pass a ``date``; for an instant use ``local_date(instant)`` first, since a
        UTC date and the local date differ near midnight.
        """
        if isinstance(d, datetime):
            raise TypeError("is_working_day takes a date; use local_date(instant) for a datetime")
        # Plain tuple lookups (a few dozen dates): no cached sets, which model_copy
        # (update=...) would carry over stale.
        if self.covers(d):
            if d in self.make_up_workdays:
                return True
            if d in self.holidays:
                return False
        elif d in self.provisional_holidays:
            return False
        return d.isoweekday() not in self.weekend

    def counts_uncovered(self, start: datetime, end: datetime) -> bool:
        """Whether counting working days from ``start`` to ``end`` reaches a day outside
        the published coverage, where the count may still change."""
        return not (self.covers(self.local_date(start)) and self.covers(self.local_date(end)))

    def days_covered_after(self, today: date) -> int:
        """How many days after ``today`` the published arrangement still covers (negative
        once ``covers_to`` has passed): the figure to alert on before coverage runs out."""
        return (self.covers_to - today).days

    def check_extension(self, new: WorkingCalendar) -> None:
        """Raise ``ValueError`` unless ``new`` is this calendar covering more: the same
        rules and published days where this one is published, and a later ``covers_to``.
        Only then can a case counted on this calendar move to ``new`` without re-counting
        anything already covered."""
        same = ("name", "utc_offset", "weekend")
        changed = [name for name in same if getattr(self, name) != getattr(new, name)]
        if changed:
            raise ValueError(f"the new calendar changes {', '.join(changed)}; only coverage may grow")
        if new.covers_from > self.covers_from or new.covers_to <= self.covers_to:
            raise ValueError(
                f"the new calendar covers {new.covers_from}..{new.covers_to}, which does not extend "
                f"{self.covers_from}..{self.covers_to}"
            )
        for name in ("holidays", "make_up_workdays"):
            mine = set(getattr(self, name))
            theirs = {d for d in getattr(new, name) if self.covers(d)}
            if mine != theirs:
                diff = sorted(mine ^ theirs)
                raise ValueError(f"the new calendar changes published {name.replace('_', ' ')}: {diff}")

    def local_date(self, instant: datetime) -> date:
        """The calendar date of ``instant`` in this calendar's local time."""
        _require_aware(instant, "instant")
        return instant.astimezone(self.tz).date()

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        d += timedelta(days=1)
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """The instant ``n`` working days after ``start``, as an aware UTC datetime.

        ``start`` is taken in the calendar's local time (``utc_offset``).

        - If its local date is a working day, the result is the same local
          time-of-day on the n-th following working day: Friday 15:00 + 2 → Tuesday
          15:00 (Saturday and Sunday skipped; holidays skipped, make-up days counted).
        - If its local date is not a working day, counting starts from 00:00 local of
          the next working day: Saturday 10:00 + 2 → Wednesday 00:00 (two full working
          days, Monday and Tuesday).
        - ``n == 0`` returns that starting point (``start`` itself on a working day).
        """
        _require_aware(start, "start")
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        local = start.astimezone(self.tz)
        day = local.date()
        time_of_day = local.timetz()
        if not self.is_working_day(day):
            day = self.next_working_day(day)
            time_of_day = time(0, tzinfo=self.tz)
        for _ in range(n):
            day = self.next_working_day(day)
        return datetime.combine(day, time_of_day).astimezone(timezone.utc)


class CaseLimits(BaseModel):
    """How much one case may hold, so no sequence of accepted requests can outgrow Temporal's
    limits (2 MiB per payload, 50 MiB / 51,200 events per history). Each is refused with a
    422 naming it (README "Limits"); staying inside them, a case's state and answers stay
    small and its history is continued as new before it grows long."""

    model_config = _FROZEN

    # party_submit_evidence: submissions per party, and what one may carry.
    evidence_submissions_per_party: int = Field(default=20, ge=1)
    attachments_per_submission: int = Field(default=10, ge=0, le=20)
    evidence_text_chars: int = Field(default=2000, ge=1, le=2000)
    attachment_url_chars: int = Field(default=2000, ge=1, le=2000)
    # All evidence bodies of one case together (text and attachment references, as stored).
    evidence_bytes_per_case: int = Field(default=256 * 1024, ge=1)
    # Other actions that a case may repeat.
    evidence_requests_per_party: int = Field(default=5, ge=1)
    deadline_extensions: int = Field(default=10, ge=0)
    hand_overs: int = Field(default=10, ge=0)
    # Platform interventions: the buyer's escalation and the seller's return-problem reports.
    escalations: int = Field(default=3, ge=1)
    # The dispute view lists the newest events only, with the total count; likewise the
    # SLA breaches of a case no mediator takes, which recur for as long as it waits.
    events_in_view: int = Field(default=50, ge=1)
    sla_breaches_listed: int = Field(default=20, ge=1)
    # A run whose history reaches this many events continues as new at its next quiet point.
    history_events_per_run: int = Field(default=2000, ge=100)
    # Completed action update ids carried into the next run, so a retried action still
    # finds its first outcome (Temporal de-duplicates update ids within one run only).
    update_ids_carried: int = Field(default=200, ge=1)


# ---- service levels: what a case is measured against (seeds 000-002) ----------------
# Each level runs from a start milestone to the first of its stop milestones, with a target
# duration and the share of cases that must meet it. The workflow evaluates them on the
# case's own clock (reporting.facts); the reporting read model keeps the outcome.


class Milestone(StrEnum):
    """Moments of a case a service level can start or stop at: the first time each happens."""

    OPENED = "opened"
    SELLER_FIRST_ACTION = "seller_first_action"
    # A mediator's (or the platform's) first action on the case.
    PLATFORM_FIRST_ACTION = "platform_first_action"
    ESCALATED = "escalated"
    MEDIATOR_TOOK = "mediator_took"
    RULED = "ruled"
    CLOSED = "closed"


class Urgency(StrEnum):
    ANY = "any"
    ORDINARY = "ordinary"
    URGENT = "urgent"


class ServiceLevel(BaseModel):
    model_config = _FROZEN

    name: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    description: str
    start: Milestone
    stop: tuple[Milestone, ...] = Field(min_length=1)
    target: Window
    # The share of cases that must meet the target, 0..1.
    target_share: float = Field(ge=0, le=1)
    # Which cases it applies to: urgency is known once a case is escalated with an urgent concern.
    applies_to: Urgency = Urgency.ANY


DEFAULT_SERVICE_LEVELS: tuple[ServiceLevel, ...] = (
    ServiceLevel(name="ordinary_answered", description="ordinary case answered by the seller or the platform",
                 start=Milestone.OPENED, stop=(Milestone.SELLER_FIRST_ACTION, Milestone.PLATFORM_FIRST_ACTION),
                 target=Window.hours(24), target_share=0.95, applies_to=Urgency.ORDINARY),
    ServiceLevel(name="urgent_acted_on", description="urgent safety case acted on by the platform",
                 start=Milestone.ESCALATED, stop=(Milestone.PLATFORM_FIRST_ACTION,),
                 target=Window.hours(2), target_share=0.95, applies_to=Urgency.URGENT),
    ServiceLevel(name="first_investigation", description="a mediator investigating the escalated case",
                 start=Milestone.ESCALATED, stop=(Milestone.PLATFORM_FIRST_ACTION,),
                 target=Window.working(1), target_share=0.95),
    ServiceLevel(name="proposed_solution", description="a ruling on the escalated case",
                 start=Milestone.ESCALATED, stop=(Milestone.RULED,),
                 target=Window.working(2), target_share=0.95),
)


class Policy(BaseModel):
    """Every window and SLA of the dispute life cycle, versioned.

    Window defaults are the domain defaults (shared/domain.md). Each workflow input
    records it (a shipped version by its ``policy.versions.PolicyRef``); a change of
    policy is a new ``version``.
    """

    model_config = _FROZEN

    version: str

    # WAIT_SELLER_AGREE: seller silent past this → request granted automatically.
    seller_response_not_shipped: Window = Window.hours(24)
    seller_response_shipped_refund_only: Window = Window.hours(36)
    seller_response_return_and_refund: Window = Window.hours(48)

    # SELLER_REFUSED: buyer revises or escalates within this, else the dispute closes.
    buyer_response_after_refusal: Window = Window.days(5)
    # Seller's partial offer: buyer accepts or refuses within this.
    buyer_response_to_offer: Window = Window.days(5)

    # WAIT_BUYER_RETURN_GOODS / WAIT_SELLER_CONFIRM_GOODS.
    buyer_return_shipment: Window = Window.days(7)
    seller_confirm_return: Window = Window.days(10)

    # PLATFORM_INTERVENING. mediator_rule counts from escalation.
    mediator_take: Window = Window.working(2)
    mediator_take_urgent: Window = Window.hours(2)
    mediator_rule: Window = Window.working(7)

    # Evidence (举证): each party's window after a request; the seller's once the buyer
    # has submitted.
    evidence_response: Window = Window.days(3)
    evidence_response_after_buyer: Window = Window.hours(24)

    # Either party may appeal a ruling within this, at most once.
    appeal: Window = Window.days(10)

    # A reminder goes out this long before a deadline; zero disables reminders.
    reminder_before: timedelta = Field(default=timedelta(hours=24), ge=timedelta(0))

    # How many times a buyer may revise and re-submit a refused request.
    max_resubmissions: int = Field(default=3, ge=0)

    # What one case may hold; see CaseLimits.
    limits: CaseLimits = CaseLimits()

    # Further disputes on one order (README: "Refund caps and second disputes"). Whatever the
    # reason, a new dispute may claim only what the order has not refunded yet; it may open
    # only after the last one closed without a platform ruling (withdrawn, agreed, lapsed),
    # within this window of that closure (Taobao: a withdrawn request may be re-opened within
    # the after-sale period), and an order takes at most this many disputes in all.
    reopen_within: Window = Window.days(15)
    max_disputes_per_order: int = Field(default=3, ge=1)

    # Reason categories that make a case urgent (mediator_take_urgent applies).
    urgent_reasons: tuple[str, ...] = ("safety", "personal_injury", "counterfeit")

    # Advance payment (先行垫付) as a pending two-phase hold (True) or paid immediately.
    advance_payment_two_phase: bool = True

    # Lowest balance the guarantee fund may reach, in minor units.
    guarantee_fund_floor: int = 0

    # What cases are measured against (reporting); and how long after a case is final its
    # parties may answer the satisfaction survey. Policies recorded before them get the defaults.
    service_levels: tuple[ServiceLevel, ...] = DEFAULT_SERVICE_LEVELS
    survey_window: Window = Window.days(7)

    # Required, with no default, so building or validating a Policy never reads files
    # (workflow code). ``presets.default_policy()`` supplies the mainland-China calendar.
    calendar: WorkingCalendar

    def due_at(self, start: datetime, window: Window) -> datetime:
        """When ``window`` started at ``start`` expires, as an aware UTC datetime.

        Exact durations are added; working days are counted on ``calendar`` (see
        ``WorkingCalendar.add_working_days``)."""
        _require_aware(start, "start")
        if window.working_days is not None:
            return self.calendar.add_working_days(start, window.working_days)
        assert window.duration is not None
        return (start + window.duration).astimezone(timezone.utc)

    def check_calendar_update(self, new: Policy) -> None:
        """Raise ``ValueError`` unless ``new`` is this policy under a new version with only
        its calendar extended (``WorkingCalendar.check_extension``): what an open case may
        switch to when the next year's arrangement is published."""
        if new.version == self.version:
            raise ValueError(f"the case already runs policy {self.version}; a calendar update needs a new version")
        rest = {"version", "calendar"}
        if self.model_dump(exclude=rest) != new.model_dump(exclude=rest):
            changed = sorted(
                name for name in Policy.model_fields
                if name not in rest and getattr(self, name) != getattr(new, name)
            )
            raise ValueError(f"policy {new.version} changes {', '.join(changed)}, not only the calendar")
        self.calendar.check_extension(new.calendar)

    def reminder_at(self, due: datetime, now: datetime) -> datetime | None:
        """When to remind about a deadline ``due``: ``reminder_before`` ahead of it.

        ``None`` if that moment is not strictly after ``now`` (a reminder whose time
        has already come when the deadline is set is skipped) or if reminders are
        disabled (``reminder_before`` is zero)."""
        _require_aware(due, "due")
        _require_aware(now, "now")
        if self.reminder_before <= timedelta(0):
            return None
        at = due - self.reminder_before
        if at <= now:
            return None
        return at.astimezone(timezone.utc)

    def is_urgent(self, reason: str) -> bool:
        """Whether a case with this reason category is urgent."""
        return reason in self.urgent_reasons

    def seller_response_window(self, *, shipped: bool, return_goods: bool) -> Window:
        """The seller response window for a new request: return-and-refund, else
        shipped refund-only, else not shipped."""
        if return_goods:
            return self.seller_response_return_and_refund
        if shipped:
            return self.seller_response_shipped_refund_only
        return self.seller_response_not_shipped

    def mediator_take_window(self, *, urgent: bool) -> Window:
        return self.mediator_take_urgent if urgent else self.mediator_take
