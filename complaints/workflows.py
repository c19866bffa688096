"""The complaint (投诉) workflow and the seller standing entity workflow.

Deterministic: other modules are imported through `imports_passed_through`, every instant is
`workflow.now()`, every window comes from the policy recorded in the input, and every side
effect (money, the standing, the outbox) is an activity. Update handlers only change state
once their validator accepted the action; the run loop does what the new state asks.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    # By their full names, so passed through (see workflows/dispute.py); they keep no state.
    import complaints.rules as rules
    import complaints.standing as standing
    from config.temporal import SearchAttributes
    from complaints.models import (
        Appeal,
        AppealDecision,
        ComplaintAction,
        ComplaintEvent,
        ComplaintInput,
        ComplaintState,
        ComplaintView,
        CompensationPaid,
        Decision,
        DeliverViolation,
        EvidenceRequest,
        EvidenceSubmission,
        Fault,
        MediatorDecide,
        MediatorRequestComplaintEvidence,
        Outcome,
        PartySubmitComplaintEvidence,
        PayCompensation,
        ReleaseFiling,
        ReverseCompensation,
        SellerAccept,
        SellerAppeal,
        SellerContest,
        SeniorDecideAppeal,
        StandingInput,
        StandingState,
        StandingView,
        ActionResult,
        Violation,
        WithdrawViolation,
    )
    from identity import Actor, Role
    from money import Money
    from workflows.actions import Call, action_update
    from notifications.models import NotificationMessage
    from workflows.models import Notification, Notifications
    from activities.archive import ArchiveActivities, ArchiveFinalComplaint
    from workflows.dispute import ACTIVITY_TIMEOUT, ARCHIVE_RETRY

S = ComplaintState

_ACTIVITY = {"start_to_close_timeout": timedelta(seconds=30),
             "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30))}
# Who is told about what the platform's mediators must act on.
MEDIATORS = "mediators"
MARKETPLACE = "marketplace"
ARCHIVE_PATCH = "archive-final-complaint"
NOTIFY_ALL_PATCH = "complaint-notify-all"

# An action's own checks beyond who may act now: a method of the workflow taking (actor, args).
_Checks = Callable[["ComplaintWorkflow", Actor, Any], None]


def _action(checks: _Checks | None = None):
    """The Update of the action the handler is named after. It takes `Call[<the handler's
    args>]` (the actor beside the arguments) and hands the handler both; its validator refuses
    whom `rules.check_action` refuses, then whatever `checks` refuses, before anything is
    recorded. It answers with the state the handler left."""

    def declare(handler):
        action = ComplaintAction(handler.__name__)

        def run(self: "ComplaintWorkflow", call: Call) -> ActionResult:
            handler(self, call.actor, call.args)
            return ActionResult(state=self._state)

        def validate(self: "ComplaintWorkflow", call: Call) -> None:
            self._check(action, call.actor)
            if checks is not None:
                checks(self, call.actor, call.args)

        return action_update(handler, run, validate)

    return declare


@workflow.defn
class ComplaintWorkflow:
    @workflow.init
    def __init__(self, complaint: ComplaintInput) -> None:
        self._in = complaint
        self._rule = complaint.policy.types[complaint.complaint_type]
        self._state = S.WAIT_SELLER_RESPONSE
        self._filed_at = workflow.now()
        self._deadline = None
        self._deadline_kind: str | None = None
        self._requests: list[EvidenceRequest] = []
        self._submissions: list[EvidenceSubmission] = []
        self._outcome: Outcome | None = None
        self._appeal: Appeal | None = None
        self._compensation: CompensationPaid | None = None
        self._violation_recorded = False
        self._final = False
        self._events: list[ComplaintEvent] = []
        self._events_total = 0
        # Bumped by every accepted action, so the run loop wakes to look.
        self._changes = 0
        # Who must hear of the last evidence action: (role, kind, subject).
        self._news: tuple[Role, str, str] | None = None
        # Set before the filing is answered: the seller's window runs from the filing.
        self._set_deadline("seller_response", complaint.policy.seller_response)

    # ---- the life cycle ---------------------------------------------------------------------

    @workflow.run
    async def run(self, complaint: ComplaintInput) -> ComplaintView:
        await self._notify_parties("complaint_filed", f"Complaint {complaint.complaint_id} filed",
                                   roles=(Role.SELLER, Role.BUYER))
        if not await self._until(lambda: self._state != S.WAIT_SELLER_RESPONSE):
            self._record("seller_silent")
            self._decide(Decision.UPHOLD, Fault.SELLER, "The seller did not answer within the response window.", None)
        if self._state == S.PLATFORM_REVIEW:
            await self._notify(Role.MEDIATOR, MEDIATORS, "complaint_contested",
                               f"Complaint {complaint.complaint_id} contested: a mediator decides")
            await self._review()
        if self._state == S.UPHELD:
            await self._upheld()
        await self._close()
        # Final: the appeal window closed or the appeal decided. Complaints recorded before
        # this change completed without it; they replay without it.
        if workflow.patched(ARCHIVE_PATCH):
            try:
                await workflow.execute_activity_method(
                    ArchiveActivities.archive_final_complaint,
                    ArchiveFinalComplaint(view=self.view(), policy=complaint.policy),
                    start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ARCHIVE_RETRY)
            except ActivityError:
                workflow.logger.warning("archive write failed; the sweeper archives %s", complaint.complaint_id)
        return self.view()

    async def _review(self) -> None:
        """A mediator decides; an evidence request not answered in time is decided without it."""
        while self._state == S.PLATFORM_REVIEW:
            seen = self._changes
            due = min((r.due_at for r in self._open_requests()), default=None)
            if due is None:
                await workflow.wait_condition(lambda: self._changes != seen)
                continue
            try:
                await workflow.wait_condition(lambda: self._changes != seen,
                                              timeout=max(due - workflow.now(), timedelta(0)))
            except TimeoutError:
                for request in self._open_requests():
                    if request.due_at <= workflow.now():
                        request.missed = True
                        self._record("evidence_missed", text=f"the {request.party.value} sent nothing in time")
                        self._news = (Role.MEDIATOR, "evidence_missed",
                                      f"Evidence missed on {self._in.complaint_id}: decide on what was submitted")
                self._deadline, self._deadline_kind = None, None
            await self._notify_news()

    async def _upheld(self) -> None:
        complaint = self._in
        await self._pay_compensation()
        await self._deliver_violation()
        await self._notify_parties("complaint_upheld", f"Complaint {complaint.complaint_id} upheld")
        if rules.seller_accepted(self._outcome):
            return
        self._set_deadline("appeal", complaint.policy.appeal)
        if not await self._until(lambda: self._state == S.APPEALED):
            self._record("appeal_lapsed")
            return
        await self._notify(Role.MEDIATOR, MEDIATORS, "complaint_appealed",
                           f"Complaint {complaint.complaint_id} appealed: a senior mediator decides")
        await workflow.wait_condition(lambda: self._state != S.APPEALED)
        if self._state == S.OVERTURNED:
            await self._reverse_compensation()
            await workflow.execute_activity("withdraw_violation", WithdrawViolation(
                seller_id=complaint.order.seller_id, violation_id=complaint.complaint_id,
                policy=complaint.policy.standing), **_ACTIVITY)
            self._violation_recorded = False
        await self._notify_parties(f"appeal_{self._appeal.decision.value}",
                                   f"The appeal on complaint {complaint.complaint_id} was decided")

    async def _pay_compensation(self) -> None:
        rule = self._rule.compensation
        paid = self._in.order.paid
        amount = rule.amount(paid.amount) if rule is not None else 0
        if amount <= 0:
            return
        money = Money(amount=amount, currency=paid.currency)
        transfer_id = await workflow.execute_activity("pay_complaint_compensation", PayCompensation(
            complaint_id=self._in.complaint_id, buyer_id=self._in.order.buyer_id,
            seller_id=self._in.order.seller_id, amount=money), result_type=str, **_ACTIVITY)
        self._compensation = CompensationPaid(amount=money, transfer_id=transfer_id)

    async def _reverse_compensation(self) -> None:
        if self._compensation is None:
            return
        reversal = await workflow.execute_activity("reverse_complaint_compensation", ReverseCompensation(
            complaint_id=self._in.complaint_id, buyer_id=self._in.order.buyer_id,
            seller_id=self._in.order.seller_id, amount=self._compensation.amount), result_type=str, **_ACTIVITY)
        self._compensation = self._compensation.model_copy(update={"reversed_by": reversal})

    async def _deliver_violation(self) -> None:
        complaint = self._in
        violation = Violation(violation_id=complaint.complaint_id, rule=complaint.complaint_type,
                              violation_class=self._rule.violation_class, points=self._rule.points,
                              at=workflow.now())
        await workflow.execute_activity("deliver_violation", DeliverViolation(
            seller_id=complaint.order.seller_id, violation=violation, policy=complaint.policy.standing), **_ACTIVITY)
        self._violation_recorded = True

    async def _close(self) -> None:
        self._final = True
        self._deadline, self._deadline_kind = None, None
        order = self._in.order
        await workflow.execute_activity("release_complaint_filing", ReleaseFiling(
            order_id=order.order_id, complaint_type=self._in.complaint_type,
            complaint_id=self._in.complaint_id), **_ACTIVITY)
        await self._notify_parties("complaint_closed", f"Complaint {self._in.complaint_id} is final")
        await workflow.wait_condition(workflow.all_handlers_finished)

    # ---- updates: validators refuse before anything is recorded -------------------------------

    def _check(self, action: ComplaintAction, actor: Actor) -> None:
        order = self._in.order
        rules.check_action(action, actor, {Role.BUYER: order.buyer_id, Role.SELLER: order.seller_id},
                           self._allowed())

    def _check_evidence(self, actor: Actor, args: SellerContest | PartySubmitComplaintEvidence) -> None:
        rules.check_evidence(args.evidence, self._in.policy)

    def _check_request(self, actor: Actor, args: MediatorRequestComplaintEvidence) -> None:
        rules.check_request(args.party, self._requests, self._in.policy)

    def _check_submission(self, actor: Actor, args: PartySubmitComplaintEvidence) -> None:
        self._check_evidence(actor, args)
        rules.check_submission(actor.role, self._submissions, self._in.policy)

    def _check_decision(self, actor: Actor, args: MediatorDecide) -> None:
        rules.check_decision(args)

    @workflow.update
    def opened(self) -> ComplaintView:
        """Answers the filing request (Update-with-Start) once the complaint runs."""
        return self.view()

    @_action()
    def seller_accept(self, actor: Actor, args: SellerAccept) -> None:
        self._record("seller_accepted", actor, args.note)
        self._decide(Decision.UPHOLD, Fault.SELLER, args.note or "The seller accepted the complaint.", actor)

    @_action(_check_evidence)
    def seller_contest(self, actor: Actor, args: SellerContest) -> None:
        self._submit(actor, args.text, args.evidence)
        self._record("seller_contested", actor, args.text)
        self._move(S.PLATFORM_REVIEW)
        self._deadline, self._deadline_kind = None, None

    @_action(_check_request)
    def mediator_request_evidence(self, actor: Actor, args: MediatorRequestComplaintEvidence) -> None:
        now = workflow.now()
        due = self._in.policy.due_at(now, self._in.policy.evidence_response)
        self._requests.append(EvidenceRequest(party=args.party, request=args.request, requested_at=now, due_at=due))
        self._deadline, self._deadline_kind = due, f"evidence_{args.party.value}"
        self._record("evidence_requested", actor, f"{args.party.value}: {args.request}")
        self._news = (args.party, "evidence_requested", f"Evidence requested on {self._in.complaint_id}")
        self._changes += 1

    @_action(_check_submission)
    def party_submit_evidence(self, actor: Actor, args: PartySubmitComplaintEvidence) -> None:
        self._submit(actor, args.text, args.evidence)
        for request in self._open_requests():
            if request.party == actor.role:
                request.answered_at = workflow.now()
        if not self._open_requests():
            self._deadline, self._deadline_kind = None, None
        self._record("evidence_submitted", actor)
        self._news = (Role.MEDIATOR, "evidence_submitted", f"Evidence submitted on {self._in.complaint_id}")

    @_action(_check_decision)
    def mediator_decide(self, actor: Actor, args: MediatorDecide) -> None:
        self._record(f"mediator_{args.decision.value}", actor, args.rationale)
        self._decide(args.decision, args.fault, args.rationale, actor)

    @_action()
    def seller_appeal(self, actor: Actor, args: SellerAppeal) -> None:
        self._appeal = Appeal(reason=args.reason, new_information=args.new_information, appealed_at=workflow.now())
        self._move(S.APPEALED)
        self._deadline, self._deadline_kind = None, None
        self._record("seller_appealed", actor, args.reason)
        self._changes += 1

    @_action()
    def senior_decide_appeal(self, actor: Actor, args: SeniorDecideAppeal) -> None:
        assert self._appeal is not None
        self._appeal = self._appeal.model_copy(update={
            "decision": args.decision, "rationale": args.rationale, "decided_by": actor, "decided_at": workflow.now()})
        self._move(S.OVERTURNED if args.decision == AppealDecision.UPHOLD_APPEAL else S.UPHELD)
        self._record(args.decision.value, actor, args.rationale)
        self._changes += 1

    @workflow.query
    def view(self) -> ComplaintView:
        complaint = self._in
        return ComplaintView(
            complaint_id=complaint.complaint_id, state=self._state, complaint_type=complaint.complaint_type,
            violation_class=self._rule.violation_class, points=self._rule.points,
            description=complaint.description, evidence=complaint.evidence, order=complaint.order,
            filed_by=complaint.filed_by, filed_at=self._filed_at, policy_version=complaint.policy.version,
            deadline=self._deadline, deadline_kind=self._deadline_kind, evidence_requests=self._requests,
            submissions=self._submissions, outcome=self._outcome, appeal=self._appeal,
            compensation=self._compensation, violation_recorded=self._violation_recorded, final=self._final,
            allowed_actions=self._allowed(), events=self._events, events_total=self._events_total)

    # ---- helpers ------------------------------------------------------------------------------

    def _allowed(self) -> dict[Role, list[ComplaintAction]]:
        if self._final:
            return {}
        return rules.allowed_actions(self._state, self._outcome, self._deadline_kind == "appeal",
                                     self._open_requests())

    def _open_requests(self) -> list[EvidenceRequest]:
        return [r for r in self._requests if r.answered_at is None and not r.missed]

    def _move(self, state: ComplaintState) -> None:
        self._state = state
        workflow.upsert_search_attributes([SearchAttributes.STATE.value_set(state.value)])

    def _decide(self, decision: Decision, fault: Fault, rationale: str, actor: Actor | None) -> None:
        self._outcome = Outcome(decision=decision, fault=fault, rationale=rationale, decided_by=actor,
                                decided_at=workflow.now())
        self._move(S.UPHELD if decision == Decision.UPHOLD else S.REJECTED)
        self._deadline, self._deadline_kind = None, None
        self._changes += 1

    def _submit(self, actor: Actor, text: str, evidence: list) -> None:
        self._submissions.append(EvidenceSubmission(at=workflow.now(), party=actor.role, text=text,
                                                    evidence=evidence))
        self._changes += 1

    def _set_deadline(self, kind: str, window) -> None:
        self._deadline = self._in.policy.due_at(workflow.now(), window)
        self._deadline_kind = kind

    async def _until(self, condition) -> bool:
        """Wait for `condition` until the running deadline; False when the deadline came first."""
        if condition():  # an action answered before the run got here (and cleared the deadline)
            return True
        assert self._deadline is not None
        try:
            await workflow.wait_condition(condition, timeout=max(self._deadline - workflow.now(), timedelta(0)))
        except TimeoutError:
            return False
        return True

    def _record(self, kind: str, actor: Actor | None = None, text: str | None = None) -> None:
        self._events_total += 1
        self._events = [*self._events, ComplaintEvent(at=workflow.now(), kind=kind, actor=actor, text=text)][
            -self._in.policy.events_in_view:]

    async def _notify_news(self) -> None:
        """Tell whoever must act about the last accepted evidence action."""
        if self._news is None:
            return
        role, kind, subject = self._news
        self._news = None
        order = self._in.order
        recipient = {Role.BUYER: order.buyer_id, Role.SELLER: order.seller_id}.get(role, MEDIATORS)
        await self._notify(role, recipient, kind, subject)

    async def _notify_parties(self, kind: str, subject: str, roles=(Role.BUYER, Role.SELLER)) -> None:
        order = self._in.order
        messages = [self._message(role, order.buyer_id if role == Role.BUYER else order.seller_id, kind, subject)
                    for role in roles]
        # Complaints recorded before this change sent one activity per party; they replay so.
        if workflow.patched(NOTIFY_ALL_PATCH):
            await workflow.execute_activity("notify_all", Notifications(
                dispute_id=self._in.complaint_id, messages=messages), **_ACTIVITY)
            return
        for message in messages:
            await workflow.execute_activity("notify", Notification(**dict(message)), **_ACTIVITY)

    async def _notify(self, role: Role, recipient: str, kind: str, subject: str) -> None:
        await workflow.execute_activity("notify", Notification(**dict(self._message(role, recipient, kind, subject))),
                                        **_ACTIVITY)

    def _message(self, role: Role, recipient: str, kind: str, subject: str) -> NotificationMessage:
        complaint = self._in
        return NotificationMessage(
            id=f"{complaint.complaint_id}-{self._events_total}-{kind}-{role.value}",
            dispute_id=complaint.complaint_id, recipient_role=role, recipient_id=recipient, kind=kind,
            subject=subject, data={"complaint_id": complaint.complaint_id, "state": self._state.value,
                                   "deadline": self._deadline.isoformat() if self._deadline else None})


@workflow.defn
class SellerStandingWorkflow:
    """One per seller, for as long as the seller trades: violation points per class, the
    penalties they impose, and the timers that lift penalties and reset points. Violations
    arrive as signals (a redelivery counts once); the run continues as new to stay small."""

    @workflow.init
    def __init__(self, start: StandingInput) -> None:
        self._in = start
        self._state = start.carried or StandingState(seller_id=start.seller_id)
        self._inbox: list[Violation | str] = []

    @workflow.signal
    def deliver_violation(self, violation: Violation) -> None:
        self._inbox.append(violation)

    @workflow.signal
    def withdraw_violation(self, violation_id: str) -> None:
        self._inbox.append(violation_id)

    @workflow.query
    def standing(self) -> StandingView:
        return standing.view(self._state, self._in.policy)

    @workflow.run
    async def run(self, start: StandingInput) -> None:
        policy, state = start.policy, self._state
        standing.start_periods(state, policy, workflow.now())
        while True:
            now = workflow.now()
            ended = standing.expire(state, policy, now)
            changed = bool(ended) or bool(standing.apply_resets(state, policy, now))
            started = []
            while self._inbox:
                item = self._inbox.pop(0)
                if isinstance(item, str):
                    ended += standing.withdraw(state, item, policy, now)
                    changed = True
                else:
                    before = state.violations_total
                    started += standing.record(state, item, policy, now)
                    changed = changed or state.violations_total != before
            if changed:
                state.revision += 1
                await workflow.execute_activity("publish_standing", standing.summary(state), **_ACTIVITY)
            for penalty in started:
                await self._announce(penalty, "penalty_started", f"Penalty from {penalty.started_at.isoformat()}")
            for penalty in ended:
                await self._announce(penalty, "penalty_ended", f"Penalty ended ({penalty.end_reason})")
            if not self._inbox and workflow.info().get_current_history_length() >= policy.history_events_per_run:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(StandingInput(seller_id=start.seller_id, policy=policy, carried=state))
            wake = standing.next_wake(state, policy)
            timeout = max(wake - workflow.now(), timedelta(0)) if wake is not None else None
            try:
                await workflow.wait_condition(lambda: bool(self._inbox), timeout=timeout)
            except TimeoutError:
                pass

    async def _announce(self, penalty, kind: str, subject: str) -> None:
        """The seller is told; the marketplace gets the event it enforces (its webhook)."""
        data = penalty.model_dump(mode="json") | {"seller_id": self._state.seller_id}
        for role, recipient in ((Role.SELLER, self._state.seller_id), (Role.PLATFORM, MARKETPLACE)):
            await workflow.execute_activity("notify", Notification(
                id=f"{penalty.penalty_id}-{kind}-{role.value}", dispute_id=standing.standing_id(self._state.seller_id),
                recipient_role=role, recipient_id=recipient, kind=kind, subject=subject, data=data), **_ACTIVITY)
