"""The dispute workflow: one buyer request from opening to closure, with its own clocks.

State changes happen synchronously inside update handlers and timer firings, before
any await, so two actions racing in one workflow task see each other's result. Their
side effects (money, notifications) then run in order under `_effects_lock`.
"""

import asyncio
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from pydantic import BaseModel
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.archive import ArchiveActivities, ArchiveFinalCase
    from activities.ledger import LedgerActivities
    from activities.notifications import NotificationActivities
    from activities.orders import OrderActivities
    from config.temporal import SearchAttributes
    from identity import Actor, Role
    from money import Money, plans
    from notifications.models import NotificationMessage
    from policy import Window
    from policy import versions as policy_versions
    from reporting.facts import CaseFacts, opening_facts
    # Imported by their full names: `from workflows import lifecycle` would load the module
    # afresh in each workflow's sandbox (the package is the workflow's own, so not passed
    # through). They keep no state of their own, so every case may share them.
    import workflows.intervention as hearing
    import workflows.lifecycle as lifecycle
    import workflows.rules as rules
    from workflows.actions import action_update
    from workflows.stages import Close, EvidenceMissed, Situation, ToSeniorQueue
    from workflows.actions import Call
    from workflows.models import (
        Action,
        ActionResult,
        OPENING_MEMO,
        OpenDeadline,
        Opened,
        AnsweredUpdate,
        CarriedCase,
        CaseCounts,
        Advance,
        MediatorOrderAdvance,
        PayAdvance,
        AdjustAfterAppeal,
        Appeal,
        AppealStage,
        CaseSnapshot,
        BuyerEscalate,
        EvidenceRef,
        EvidenceRequest,
        EvidenceSubmission,
        Intervention,
        MediatorExtendDeadline,
        MediatorHandOver,
        MediatorRequestEvidence,
        MediatorRule,
        MediatorTake,
        PartyAppeal,
        PartyWithdrawAppeal,
        Refusal,
        Ruling,
        RulingDecision,
        SellerReportReturnProblem,
        UrgentConcern,
        BuyerAcceptOffer,
        BuyerRefuseOffer,
        SubmittedEvidence,
        BuyerRevise,
        BuyerShipReturn,
        BuyerWithdraw,
        CalendarUpdate,
        Deadline,
        DeadlineKind,
        DisputeEvent,
        DisputeInput,
        DisputeState,
        DisputeClosed,
        DisputeView,
        FreezeEscrow,
        Notification,
        Notifications,
        PlatformAction,
        ReleaseOrder,
        Resolution,
        ReturnShipment,
        SellerAgreeRefund,
        SellerAgreeReturn,
        SellerConfirmReturn,
        SellerOfferPartial,
        SellerRefuse,
        SettleDispute,
    )

S = DisputeState

# Money must move eventually whatever fails: retry with backoff until an operator fixes
# the cause, which the Temporal UI shows as the activity's last failure.
MONEY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# The case's own archive write is the fast path: if the archive stays down, the case closes
# anyway and the sweeper archives it from its closed history before retention runs out.
ARCHIVE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)


@dataclass(frozen=True)
class _Notify:
    # One change of the case: its messages to every recipient, and the case after it.
    change: Notifications


@dataclass(frozen=True)
class _Settle:
    refund: int
    step: str
    # An appealable ruling keeps the order locked until its appeal window closes.
    release_order: bool = True


@dataclass(frozen=True)
class _AdjustAfterAppeal:
    delta: int


_Effect = _Notify | _Settle | _AdjustAfterAppeal

SETTLEMENT_PATCH = "settlement-search-attribute"
CONTINUE_AS_NEW_PATCH = "continue-as-new"
INTERVENTION_RECORD_PATCH = "intervention-keeps-earlier-record"
ARCHIVE_PATCH = "archive-final-case"
NOTIFY_ALL_PATCH = "notify-all-after-answer"


# An action's own checks beyond the table's: a method of the workflow taking (actor, args).
_Checks = Callable[["DisputeWorkflow", Actor, Any], None]


def _action(checks: _Checks | None = None, *, first: _Checks | None = None):
    """The Update of the action the handler is named after. It takes `Call[<the handler's
    args>]` (the actor beside the arguments) and hands the handler both; its validator checks
    the table and the rules (`_admit`), then `checks`; `first` runs before the table, for a
    refusal that says more than "not possible now". An update id a previous run answered
    gets that answer again and changes nothing (Temporal de-duplicates update ids within one
    run only)."""

    def declare(handler):
        action = Action(handler.__name__)

        async def run(self: "DisputeWorkflow", call: Call) -> ActionResult:
            earlier = self._answered_before()
            return earlier if earlier is not None else await handler(self, call.actor, call.args)

        def validate(self: "DisputeWorkflow", call: Call) -> None:
            if self._answered_before() is None:
                if first is not None:
                    first(self, call.actor, call.args)
                self._admit(action, call.actor, call.args, checks)

        return action_update(handler, run, validate)

    return declare


@workflow.defn
class DisputeWorkflow:
    @workflow.init
    def __init__(self, input: DisputeInput) -> None:
        self._input = input
        # A ref this worker cannot resolve fails the workflow task (retried, visible), never a guess.
        self._policy = policy_versions.resolve(input.policy)
        self._limits = self._policy.limits
        # Bumped by every change the clock must re-plan for.
        self._changes = 0
        self._effects_lock = asyncio.Lock()
        self._pending_effects: list[_Effect] = []
        # Changes whose notifications are not written yet, oldest first, and the task writing them.
        self._unsent: list[Notifications] = []
        self._sending: asyncio.Task | None = None
        # While the guarantee fund is paying, other actions wait: the payment may be refused.
        self._paying_advance = False
        self._continue_as_new_refused = False
        # Completed actions by update id: of earlier runs (carried) and of this one.
        self._answered: dict[str, ActionResult] = {}
        carried = input.carried
        if carried is not None:
            self._resume(carried)
            return
        self._request = input.request
        self._state = S.WAIT_SELLER_AGREE
        self._opened_at = workflow.now()
        self._events: list[DisputeEvent] = []
        self._events_total = 0
        self._deadlines: dict[DeadlineKind, Deadline] = {}
        self._escrow_frozen = 0
        self._escrow_checked = False
        self._refunded = 0
        self._offer: Money | None = None
        self._return_address: str | None = None
        self._return_shipment: ReturnShipment | None = None
        self._resubmissions = 0
        self._resolution: Resolution | None = None
        self._intervention: Intervention | None = None
        self._advance: Advance | None = None
        self._appealed_resolution: Resolution | None = None
        self._order_released = False
        self._counts = CaseCounts()
        self._facts = self._opening_facts()
        self._open()

    def _resume(self, carried: CarriedCase) -> None:
        """Take the case over from the run that continued as new; its escrow is already frozen."""
        self._request = carried.request
        self._state = carried.state
        self._opened_at = carried.opened_at
        self._events = list(carried.events)
        self._events_total = carried.events_total
        self._deadlines = {d.kind: d for d in carried.deadlines}
        self._escrow_frozen = carried.escrow_frozen
        self._escrow_checked = True
        self._refunded = carried.refunded
        self._offer = carried.offer
        self._return_address = carried.return_address
        self._return_shipment = carried.return_shipment
        self._resubmissions = carried.resubmissions
        self._resolution = carried.resolution
        self._appealed_resolution = carried.appealed_resolution
        self._intervention = carried.intervention
        if (self._intervention is not None and self._intervention.appeal_stage == AppealStage.NONE
                and any(kind in self._deadlines for kind in hearing.APPEAL_DEADLINES)):
            # Carried by a run from before the appeal's stage was kept: its window is open.
            hearing.open_appeal_window(self._intervention)
        self._advance = carried.advance
        self._order_released = carried.order_released
        self._counts = carried.counts
        self._answered = {a.update_id: a.result for a in carried.answered}
        self._facts = carried.facts or self._opening_facts()

    def _opening_facts(self) -> CaseFacts:
        order = self._input.order
        return opening_facts(order.order_id, order.buyer_id, order.seller_id, self._request.reason.value,
                             self._request.amount, self._opened_at)

    def _carry(self) -> CarriedCase:
        answered = list(self._answered.items())[-self._limits.update_ids_carried:]
        return CarriedCase(
            state=self._state, request=self._request, opened_at=self._opened_at,
            events=self._events[-self._limits.events_in_view:], events_total=self._events_total,
            deadlines=list(self._deadlines.values()), escrow_frozen=self._escrow_frozen, refunded=self._refunded,
            offer=self._offer, return_address=self._return_address, return_shipment=self._return_shipment,
            resubmissions=self._resubmissions, resolution=self._resolution,
            appealed_resolution=self._appealed_resolution, intervention=self._intervention,
            advance=self._advance, order_released=self._order_released, counts=self._counts,
            answered=[AnsweredUpdate(update_id=update_id, result=result) for update_id, result in answered],
            facts=self._facts,
        )

    # ---- run: the clock ------------------------------------------------------------

    @workflow.run
    async def run(self, input: DisputeInput) -> DisputeClosed:
        if input.carried is None:
            await self._freeze_escrow(input)
        # A closed case lives on while an appeal window is open.
        while not self._state.is_terminal or self._deadlines:
            await self._tick()
            if self._time_to_continue_as_new():
                if workflow.patched(CONTINUE_AS_NEW_PATCH):
                    # self._input, not input: a calendar update may have moved the case's policy.
                    workflow.continue_as_new(self._input.model_copy(update={"carried": self._carry()}))
                self._continue_as_new_refused = True  # replaying a run recorded without it
        # The closing transition's settlement runs in whichever handler made it.
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not self._order_released:
            await self._release_order()
        if self._unsent:
            # The read models hold the case's last change before it is final.
            await workflow.wait_condition(lambda: not self._unsent)
        # Final: no appeal window open, the money settled. Cases recorded before this
        # change closed without it; they replay without it.
        if workflow.patched(ARCHIVE_PATCH):
            try:
                final = ArchiveFinalCase(view=self._view(), policy=policy_versions.ref_or_body(self._policy))
                await workflow.execute_activity_method(
                    ArchiveActivities.archive_final_case, final,
                    start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ARCHIVE_RETRY)
            except ActivityError:
                workflow.logger.warning("archive write failed; the sweeper archives %s", input.dispute_id)
        return DisputeClosed(dispute_id=input.dispute_id, state=self._state, policy_version=self._policy.version,
                             resolution=self._resolution)

    def _time_to_continue_as_new(self) -> bool:
        """The run's history is long and the case is quiet: no action, effect or payment under way."""
        if self._continue_as_new_refused:
            return False
        info = workflow.info()
        long = (info.get_current_history_length() >= self._limits.history_events_per_run
                or info.is_continue_as_new_suggested())
        return (long and workflow.all_handlers_finished() and not self._pending_effects
                and not self._effects_lock.locked() and not self._unsent)

    async def _freeze_escrow(self, input: DisputeInput) -> None:
        async with self._effects_lock:
            frozen = await workflow.execute_activity_method(
                LedgerActivities.freeze_escrow,
                FreezeEscrow(
                    dispute_id=input.dispute_id,
                    order_id=input.order.order_id,
                    seller_id=input.order.seller_id,
                    currency=input.order.paid.currency,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=MONEY_RETRY,
            )
            self._escrow_frozen = frozen.amount
            self._escrow_checked = True
        await self._flush_effects()

    async def _tick(self) -> None:
        """Sleep until the next deadline or reminder, or until something changes."""
        seen = self._changes
        upcoming = self._next_wake()
        if upcoming is None:
            await workflow.wait_condition(lambda: self._changes != seen or self._time_to_continue_as_new())
            return
        at, deadline, is_reminder = upcoming
        delay = at - workflow.now()
        if delay > timedelta(0):
            what = "reminder before" if is_reminder else "deadline"
            try:
                await workflow.wait_condition(
                    lambda: self._changes != seen or self._time_to_continue_as_new(),
                    timeout=delay,
                    timeout_summary=f"{what} {deadline.kind.value}",
                )
                return
            except asyncio.TimeoutError:
                pass
        if is_reminder:
            self._remind(deadline)
        else:
            self._expire(deadline)
        await self._flush_effects()

    def _next_wake(self) -> tuple[datetime, Deadline, bool] | None:
        candidates = []
        for deadline in self._deadlines.values():
            if deadline.remind_at is not None and not deadline.reminded:
                candidates.append((deadline.remind_at, deadline, True))
            candidates.append((deadline.due_at, deadline, False))
        return min(candidates, key=lambda c: (c[0], c[1].kind.value)) if candidates else None

    # ---- queries -------------------------------------------------------------------

    @workflow.query
    def view(self) -> DisputeView:
        return self._view()

    @workflow.query
    def case(self) -> CaseSnapshot:
        """The casebook's row of this case, for `disputeflow casebook rebuild`."""
        return self._case()

    @workflow.update
    async def opened(self) -> Opened:
        """Answers the opening request once the escrow is frozen (Update-with-Start), naming
        the request that started the case (read from its own memo: the same on every replay)."""
        await workflow.wait_condition(lambda: self._escrow_checked)
        started_by = workflow.memo_value(OPENING_MEMO, None, type_hint=str)
        return Opened(**dict(self._result()), started_by=started_by)

    # ---- updates: seller -----------------------------------------------------------

    @_action()
    async def seller_agree_refund(self, actor: Actor, args: SellerAgreeRefund) -> ActionResult:
        amount = self._request.amount.amount
        self._close(S.SUCCESS, actor, None, refund=amount, reason="seller agreed to refund",
                    event="seller_agreed_refund", details={"note": args.note})
        return await self._answer()

    @_action()
    async def seller_agree_return(self, actor: Actor, args: SellerAgreeReturn) -> ActionResult:
        self._return_address = args.return_address
        self._move(S.WAIT_BUYER_RETURN_GOODS, "seller_agreed_return", actor,
                   details={"return_address": args.return_address, "note": args.note})
        return await self._answer()

    def _check_seller_refuse(self, actor: Actor, args: SellerRefuse) -> None:
        rules.check_attachments(args.evidence, self._limits)

    @_action(checks=_check_seller_refuse)
    async def seller_refuse(self, actor: Actor, args: SellerRefuse) -> ActionResult:
        self._move(S.SELLER_REFUSED, "seller_refused", actor,
                   details={"reason": args.reason, "evidence": [e.model_dump() for e in args.evidence]})
        return await self._answer()

    def _check_seller_offer_partial(self, actor: Actor, args: SellerOfferPartial) -> None:
        requested = self._request.amount
        if args.amount.currency != requested.currency:
            raise rules.invalid(f"the offer must be in {requested.currency}, the currency of the request")
        if not 0 < args.amount.amount < requested.amount:
            raise rules.invalid(
                f"a partial offer must be more than 0 and less than the requested {requested}; "
                "to refund it all, agree to the refund"
            )

    @_action(checks=_check_seller_offer_partial)
    async def seller_offer_partial(self, actor: Actor, args: SellerOfferPartial) -> ActionResult:
        self._offer = args.amount
        self._move(S.WAIT_BUYER_ANSWER_OFFER, "seller_offered_partial", actor,
                   details={"amount": args.amount.amount, "currency": args.amount.currency, "note": args.note})
        return await self._answer()

    @_action()
    async def seller_confirm_return(self, actor: Actor, args: SellerConfirmReturn) -> ActionResult:
        self._close(S.SUCCESS, actor, None, refund=self._request.amount.amount,
                    reason="seller confirmed the returned goods", event="seller_confirmed_return",
                    details={"note": args.note})
        return await self._answer()

    # ---- updates: buyer ------------------------------------------------------------

    @_action()
    async def buyer_accept_offer(self, actor: Actor, args: BuyerAcceptOffer) -> ActionResult:
        assert self._offer is not None
        self._close(S.SUCCESS, actor, None, refund=self._offer.amount,
                    reason="buyer accepted the seller's partial offer", event="buyer_accepted_offer",
                    details={"amount": self._offer.amount, "note": args.note})
        return await self._answer()

    @_action()
    async def buyer_refuse_offer(self, actor: Actor, args: BuyerRefuseOffer) -> ActionResult:
        refused = self._offer
        self._offer = None
        self._move(S.SELLER_REFUSED, "buyer_refused_offer", actor,
                   details={"amount": refused.amount if refused else None, "note": args.note})
        return await self._answer()

    def _check_buyer_revise(self, actor: Actor, args: BuyerRevise) -> None:
        if self._resubmissions >= self._policy.max_resubmissions:
            raise rules.not_allowed(
                f"the request has been revised {self._resubmissions} times, the most the policy allows",
                self._state,
            )
        rules.check_request_fits_order(args.request, self._input.order)
        rules.check_attachments(args.request.evidence, self._limits)

    @_action(checks=_check_buyer_revise)
    async def buyer_revise(self, actor: Actor, args: BuyerRevise) -> ActionResult:
        previous = self._request
        self._request = args.request
        self._resubmissions += 1
        self._move(S.WAIT_SELLER_AGREE, "buyer_revised", actor, details={
            "previous": previous.model_dump(mode="json"),
            "request": args.request.model_dump(mode="json"),
            "resubmission": self._resubmissions,
        })
        return await self._answer()

    @_action()
    async def buyer_withdraw(self, actor: Actor, args: BuyerWithdraw) -> ActionResult:
        self._close(S.CLOSED, actor, None, refund=0, reason="buyer withdrew the request",
                    event="buyer_withdrew", details={"reason": args.reason})
        return await self._answer()

    @_action()
    async def buyer_ship_return(self, actor: Actor, args: BuyerShipReturn) -> ActionResult:
        self._return_shipment = ReturnShipment(
            carrier=args.carrier, tracking_number=args.tracking_number, shipped_at=workflow.now()
        )
        self._move(S.WAIT_SELLER_CONFIRM_GOODS, "buyer_shipped_return", actor,
                   details={"carrier": args.carrier, "tracking_number": args.tracking_number})
        return await self._answer()

    # ---- updates: escalation and platform intervention --------------------------------

    def _check_escalation(self, actor: Actor, args: BuyerEscalate | SellerReportReturnProblem) -> None:
        rules.check_count("escalations", self._counts.escalations, self._limits.escalations,
                          "the platform was asked to intervene")
        rules.check_attachments(args.evidence, self._limits)

    @_action(checks=_check_escalation)
    async def buyer_escalate(self, actor: Actor, args: BuyerEscalate) -> ActionResult:
        self._escalate(actor, args.reason, args.urgent_concern, args.evidence, "buyer_escalated")
        return await self._answer()

    @_action(checks=_check_escalation)
    async def seller_report_return_problem(self, actor: Actor, args: SellerReportReturnProblem) -> ActionResult:
        self._escalate(actor, f"returned parcel {args.problem.value.replace('_', ' ')}: {args.description}",
                       None, args.evidence, "seller_reported_return_problem")
        return await self._answer()

    def _check_party_submit_evidence(self, actor: Actor, args: SubmittedEvidence) -> None:
        if args.stored is None:
            raise rules.invalid("evidence reaches a case through the evidence store only")
        rules.check_evidence(args.stored, actor.role, self._counts, self._limits)

    @_action(checks=_check_party_submit_evidence)
    async def party_submit_evidence(self, actor: Actor, args: SubmittedEvidence) -> ActionResult:
        intervention = self._active_intervention()
        role = actor.role
        now = workflow.now()
        stored = args.stored
        if stored is not None:
            # The body stays in the evidence store; the case keeps its id and size.
            submission = EvidenceSubmission(seq=len(intervention.evidence) + 1, at=now, role=role,
                                            party_id=actor.party_id, evidence_id=stored.evidence_id,
                                            size=stored.size)
            details = {"evidence_id": stored.evidence_id, "size": stored.size, "attachments": stored.attachments}
            self._counts.evidence_submissions[role] = self._counts.evidence_submissions.get(role, 0) + 1
            self._counts.evidence_bytes += stored.size
        else:  # recorded before the evidence store: the body came inline
            submission = EvidenceSubmission(seq=len(intervention.evidence) + 1, at=now, role=role,
                                            party_id=actor.party_id, text=args.text or "",
                                            attachments=args.attachments)
            details = {"text": args.text, "attachments": [a.model_dump() for a in args.attachments]}
        intervention.evidence.append(submission)
        hearing.settle_requests(intervention, role, "answered")
        self._deadlines.pop(hearing.EVIDENCE_DEADLINE[role], None)
        seller_deadline = self._deadlines.get(DeadlineKind.SELLER_EVIDENCE)
        if role == Role.BUYER and seller_deadline is not None:
            # Once the buyer has submitted, the seller has the shorter window to answer.
            due = min(seller_deadline.due_at, self._policy.due_at(now, self._policy.evidence_response_after_buyer))
            self._set_deadline(DeadlineKind.SELLER_EVIDENCE, Role.SELLER, self._input.order.seller_id,
                               due, seller_deadline.consequence)
        self._record("evidence_submitted", self._state, self._state, actor, details=details)
        self._upsert_search_attributes()
        self._notify_stage()
        return await self._answer()

    @workflow.query
    def evidence_refusal(self, call: Call[SubmittedEvidence]) -> Refusal | None:
        """Why party_submit_evidence would refuse `call` now: the API asks before it stores the
        body, so a refused submission leaves nothing behind."""
        try:
            self._admit(Action.PARTY_SUBMIT_EVIDENCE, call.actor, call.args, DisputeWorkflow._check_party_submit_evidence)
        except ApplicationError as error:
            details = error.details[0] if error.details and isinstance(error.details[0], dict) else {}
            return Refusal(type=error.type or rules.INVALID, message=error.message, details=details)
        return None

    def _check_party_appeal(self, actor: Actor, args: PartyAppeal) -> None:
        rules.check_attachments(args.attachments, self._limits)
        # The final ruling moves only the difference from what the ruling settled: wait for that.
        if self._resolution is None or not self._resolution.settled:
            raise rules.not_allowed("the ruling's money is still being settled; try again shortly", self._state)

    @_action(checks=_check_party_appeal)
    async def party_appeal(self, actor: Actor, args: PartyAppeal) -> ActionResult:
        intervention = self._intervention
        assert intervention is not None
        first_ruling = hearing.file_appeal(intervention, Appeal(
            role=actor.role, party_id=actor.party_id, reason=args.reason,
            new_information=args.new_information, attachments=args.attachments, at=workflow.now()))
        # Kept so that the appeal's withdrawal can let the ruling stand as it was.
        self._appealed_resolution = self._resolution
        self._resolution = None
        self._move(S.PLATFORM_INTERVENING, "appealed", actor, details={
            "reason": args.reason, "new_information": args.new_information,
            "appealed_ruling": first_ruling.decision.value})
        return await self._answer()

    @_action()
    async def party_withdraw_appeal(self, actor: Actor, args: PartyWithdrawAppeal) -> ActionResult:
        """The appellant lets the appealed ruling stand: its money already moved, nothing moves now.
        The one appeal the case allows is spent, so the ruling is final for both parties."""
        ruling = hearing.withdraw_appeal(self._active_intervention())
        resolution = self._appealed_resolution
        assert resolution is not None, "an appeal is admitted only once its ruling settled"
        self._deadlines.clear()
        before = self._state
        self._state = resolution.outcome
        self._resolution = resolution
        self._record("appeal_withdrawn", before, self._state, actor, details={
            "reason": args.reason, "ruling": ruling.decision.value, "refund": ruling.refund.amount})
        self._upsert_search_attributes()
        self._notify_stage()
        return await self._answer()

    def _check_untaken(self, actor: Actor, args: MediatorTake) -> None:
        rules.check_untaken(actor, self._state, self._intervention)

    @_action(first=_check_untaken)
    async def mediator_take(self, actor: Actor, args: MediatorTake) -> ActionResult:
        intervention = self._active_intervention()
        intervention.mediator_id = actor.party_id
        self._deadlines.pop(DeadlineKind.MEDIATOR_TAKE, None)
        rule = self._deadlines[DeadlineKind.MEDIATOR_RULE]
        self._set_deadline(DeadlineKind.MEDIATOR_RULE, Role.MEDIATOR, actor.party_id, rule.due_at,
                           rule.consequence)
        self._record("mediator_took", self._state, self._state, actor, details={"note": args.note})
        self._upsert_search_attributes()
        self._notify_stage()
        return await self._answer()

    def _check_mediator_request_evidence(self, actor: Actor, args: MediatorRequestEvidence) -> None:
        if hearing.EVIDENCE_DEADLINE[args.party] in self._deadlines:
            raise rules.not_allowed(f"an evidence request to the {args.party.value} is already open; "
                                    "extend its deadline instead", self._state)
        rules.check_count("evidence_requests_per_party", self._counts.evidence_requests.get(args.party, 0),
                          self._limits.evidence_requests_per_party, f"the {args.party.value} was asked for evidence")

    @_action(checks=_check_mediator_request_evidence)
    async def mediator_request_evidence(self, actor: Actor, args: MediatorRequestEvidence) -> ActionResult:
        intervention = self._active_intervention()
        order = self._input.order
        party_id = order.buyer_id if args.party == Role.BUYER else order.seller_id
        now = workflow.now()
        self._counts.evidence_requests[args.party] = self._counts.evidence_requests.get(args.party, 0) + 1
        intervention.evidence_requests.append(EvidenceRequest(
            role=args.party, party_id=party_id, request=args.request, requested_by=actor.party_id,
            requested_at=now,
        ))
        self._open_deadline(hearing.EVIDENCE_DEADLINE[args.party], now)
        self._record("evidence_requested", self._state, self._state, actor,
                     details={"party": args.party.value, "request": args.request})
        self._upsert_search_attributes()
        self._notify_stage()
        return await self._answer()

    def _check_mediator_extend_deadline(self, actor: Actor, args: MediatorExtendDeadline) -> None:
        current = self._deadlines.get(args.deadline)
        if current is None or current.role not in (Role.BUYER, Role.SELLER):
            open_party_deadlines = [d.kind.value for d in self._deadlines.values() if d.role != Role.MEDIATOR]
            raise rules.invalid(f"{args.deadline.value} is not an open deadline of a party; open: "
                                f"{', '.join(open_party_deadlines) or 'none'}")
        if args.until <= current.due_at:
            raise rules.invalid(f"an extension must end after the current due time {current.due_at.isoformat()}")
        rules.check_count("deadline_extensions", self._counts.deadline_extensions, self._limits.deadline_extensions,
                          "deadlines were extended")

    @_action(checks=_check_mediator_extend_deadline)
    async def mediator_extend_deadline(self, actor: Actor, args: MediatorExtendDeadline) -> ActionResult:
        current = self._deadlines[args.deadline]
        self._counts.deadline_extensions += 1
        self._set_deadline(current.kind, current.role, current.party_id, args.until, current.consequence)
        self._record("deadline_extended", self._state, self._state, actor, details={
            "deadline": args.deadline.value, "from": current.due_at.isoformat(),
            "until": args.until.isoformat(), "reason": args.reason})
        self._upsert_search_attributes()
        self._notify_stage()
        return await self._answer()

    def _check_mediator_hand_over(self, actor: Actor, args: MediatorHandOver) -> None:
        intervention = self._active_intervention()
        if args.to_mediator_id == intervention.mediator_id:
            raise rules.invalid(f"the case is already with {args.to_mediator_id}")
        if args.to_mediator_id == intervention.excluded_mediator_id:
            raise rules.invalid("the mediator of the appealed ruling may not hear the appeal")
        rules.check_count("hand_overs", self._counts.hand_overs, self._limits.hand_overs, "the case was handed over")

    @_action(checks=_check_mediator_hand_over)
    async def mediator_hand_over(self, actor: Actor, args: MediatorHandOver) -> ActionResult:
        intervention = self._active_intervention()
        previous = intervention.mediator_id
        self._counts.hand_overs += 1
        intervention.mediator_id = args.to_mediator_id
        rule = self._deadlines[DeadlineKind.MEDIATOR_RULE]
        self._set_deadline(DeadlineKind.MEDIATOR_RULE, Role.MEDIATOR, args.to_mediator_id, rule.due_at,
                           rule.consequence)
        self._record("handed_over", self._state, self._state, actor, details={
            "from": previous, "to": args.to_mediator_id, "reason": args.reason})
        self._upsert_search_attributes()
        self._notify_stage()
        return await self._answer()

    def _check_mediator_rule(self, actor: Actor, args: MediatorRule) -> None:
        intervention = self._active_intervention()
        rules.check_ruling(args, self._request.amount, self._input.order, intervention,
                           has_return_address=self._return_address is not None)

    @_action(checks=_check_mediator_rule)
    async def mediator_rule(self, actor: Actor, args: MediatorRule) -> ActionResult:
        intervention = self._active_intervention()
        currency = self._input.order.paid.currency
        refund = rules.ruling_refund(args.decision, args.amount, self._request.amount)
        on_appeal = hearing.hears_appeal(intervention)
        intervention.rulings.append(Ruling(
            decision=args.decision, refund=Money(amount=refund, currency=currency), rationale=args.rationale,
            mediator_id=actor.party_id, at=workflow.now(), on_appeal=on_appeal,
        ))
        details = {"decision": args.decision.value, "rationale": args.rationale, "on_appeal": on_appeal}
        if args.decision == RulingDecision.REFUND_AFTER_RETURN:
            self._return_address = args.return_address or self._return_address
            self._move(S.WAIT_BUYER_RETURN_GOODS, "mediator_ruled", actor, details=details)
        else:
            outcome = S.SUCCESS if refund > 0 else S.CLOSED
            reason = f"mediator ruled {args.decision.value}" + (" on appeal" if on_appeal else "")
            self._close(outcome, actor, None, refund=refund, reason=reason, event="mediator_ruled",
                        details=details, appealable=not on_appeal)
        return await self._answer()

    def _check_mediator_order_advance(self, actor: Actor, args: MediatorOrderAdvance) -> None:
        rules.check_advance(args, self._request, self._input.order, self._advance is not None,
                            has_return_address=self._return_address is not None)



    @_action(checks=_check_mediator_order_advance)
    async def mediator_order_advance(self, actor: Actor, args: MediatorOrderAdvance) -> ActionResult:
        order = self._input.order
        self._paying_advance = True
        try:
            async with self._effects_lock:
                transfer_id = await workflow.execute_activity_method(
                    LedgerActivities.pay_advance,
                    PayAdvance(dispute_id=self._input.dispute_id, order_id=order.order_id, buyer_id=order.buyer_id,
                               currency=order.paid.currency, amount=args.amount.amount,
                               two_phase=self._policy.advance_payment_two_phase),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=MONEY_RETRY,
                )
        except ActivityError as error:
            reason = error.cause.message if isinstance(error.cause, ApplicationError) else str(error)
            self._record("advance_refused", self._state, self._state, actor,
                         details={"amount": args.amount.amount, "reason": reason})
            raise ApplicationError(f"the guarantee fund cannot pay this advance: {reason}",
                                   type=rules.ADVANCE_REFUSED, non_retryable=True) from error
        finally:
            self._paying_advance = False
        self._advance = Advance(amount=args.amount, two_phase=self._policy.advance_payment_two_phase,
                                ordered_by=actor.party_id, rationale=args.rationale, at=workflow.now(),
                                transfer_id=transfer_id)
        details = {"amount": args.amount.amount, "rationale": args.rationale, "transfer_id": transfer_id,
                   "two_phase": self._advance.two_phase, "return_goods": args.return_goods}
        if args.return_goods:
            self._return_address = args.return_address or self._return_address
            self._move(S.WAIT_BUYER_RETURN_GOODS, "advance_paid", actor, details=details)
        else:
            self._record("advance_paid", self._state, self._state, actor, details=details)
            self._upsert_search_attributes()
            self._notify_stage()
        return await self._answer()

    # ---- updates: platform ---------------------------------------------------------

    @workflow.update(name=PlatformAction.CALENDAR_UPDATE)
    async def calendar_update(self, args: CalendarUpdate) -> ActionResult:
        """Move the case to a policy whose calendar covers more, and count again only the
        open deadlines whose count reached past the old coverage."""
        if args.policy == self._policy:
            return self._result()  # already applied: the same update again changes nothing
        previous = self._policy
        self._policy = args.policy
        # A continued run starts from the policy the case now follows.
        self._input = self._input.model_copy(update={"policy": policy_versions.ref_or_body(args.policy)})
        moved = []
        for deadline in sorted(self._deadlines.values(), key=lambda d: d.kind.value):
            if not deadline.past_calendar_coverage:
                continue
            assert deadline.counted_from is not None and deadline.working_days is not None
            due = self._policy.calendar.add_working_days(deadline.counted_from, deadline.working_days)
            if due == deadline.due_at:
                # Same due time (its reminder stays as it is), now known for certain or not.
                self._deadlines[deadline.kind] = deadline.model_copy(update={
                    "past_calendar_coverage": self._policy.calendar.counts_uncovered(deadline.counted_from, due)})
                continue
            self._set_deadline(deadline.kind, deadline.role, deadline.party_id, due, deadline.consequence,
                               counted_from=deadline.counted_from, working_days=deadline.working_days)
            moved.append({"deadline": deadline.kind.value, "from": deadline.due_at.isoformat(),
                          "until": due.isoformat()})
        self._record("calendar_updated", self._state, self._state, args.actor, details={
            "from_policy": previous.version, "to_policy": self._policy.version,
            "covers_to": self._policy.calendar.covers_to.isoformat(), "moved": moved})
        self._upsert_search_attributes()
        if moved:
            self._notify_stage()
        return await self._answer()

    @calendar_update.validator
    def _validate_calendar_update(self, args: CalendarUpdate) -> None:
        if args.actor.role != Role.PLATFORM:
            raise rules.forbidden("only the platform operator updates a case's calendar")
        if args.policy == self._policy:
            return
        try:
            self._policy.check_calendar_update(args.policy)
        except ValueError as error:
            raise rules.invalid(f"policy {args.policy.version} cannot replace {self._policy.version} "
                                f"on this case: {error}") from None

    # ---- transitions ---------------------------------------------------------------

    def _admit(self, action: Action, actor: Actor, args: BaseModel, checks: _Checks | None) -> None:
        """Refuse, before it touches history, an action the case would not take now."""
        if self._paying_advance:
            raise rules.not_allowed("the guarantee fund is paying an advance on this case; try again shortly",
                                    self._state)
        rules.check_party(action, actor, self._input.order, self._intervention)
        allowed = self._allowed_actions().get(actor.role, [])
        if action not in allowed:
            refusal = lifecycle.refusal(self._state, actor.role, action, self._situation())
            raise rules.not_allowed(refusal or (
                f"{action.value} is not possible while the dispute is {self._state.value}"
                + (f"; {actor.role.value} may now: {', '.join(a.value for a in allowed)}" if allowed else "")),
                self._state,
            )
        if checks is not None:
            checks(self, actor, args)

    def _allowed_actions(self) -> dict[Role, list[Action]]:
        return lifecycle.allowed_actions(self._state, self._situation())

    def _situation(self) -> Situation:
        return Situation(kind=self._request.kind, shipped=self._input.order.shipped,
                         **hearing.situation_facts(self._intervention))

    def _active_intervention(self) -> Intervention:
        assert self._intervention is not None, "validators admit this only during intervention"
        return self._intervention

    def _escalate(self, actor: Actor, reason: str, concern: UrgentConcern | None,
                  evidence: list[EvidenceRef], event: str) -> None:
        now = workflow.now()
        self._counts.escalations += 1
        earlier = self._intervention
        self._intervention = Intervention(
            escalated_at=now, escalated_by=actor.role, reason=reason, urgent_concern=concern,
            urgent=concern is not None and self._policy.is_urgent(concern.value),
        )
        if earlier is not None and workflow.patched(INTERVENTION_RECORD_PATCH):
            # A new intervention (a returned parcel in dispute) hears the case afresh, but its
            # earlier rulings and evidence stay the case's: the order was ruled on.
            self._intervention.rulings = list(earlier.rulings)
            self._intervention.evidence = list(earlier.evidence)
        if evidence:
            self._intervention.evidence.append(EvidenceSubmission(
                seq=len(self._intervention.evidence) + 1, at=now, role=actor.role, party_id=actor.party_id, text=reason, attachments=evidence))
        self._move(S.PLATFORM_INTERVENING, event, actor, details={
            "reason": reason, "urgent": self._intervention.urgent,
            "urgent_concern": concern.value if concern else None})

    def _open(self) -> None:
        self._record("opened", None, S.WAIT_SELLER_AGREE, self._input.opened_by, details={
            "request": self._request.model_dump(mode="json"),
            "policy_version": self._policy.version,
        })
        self._set_stage_deadlines()
        self._notify_stage()

    def _move(self, to: DisputeState, event: str, actor: Actor | None,
              timer: DeadlineKind | None = None, details: dict | None = None) -> None:
        before = self._state
        self._state = to
        self._record(event, before, to, actor, timer, details or {})
        self._set_stage_deadlines()
        self._notify_stage()

    def _close(self, outcome: DisputeState, actor: Actor | None, timer: DeadlineKind | None, *,
               refund: int, reason: str, event: str, details: dict | None = None,
               appealable: bool = False) -> None:
        before = self._state
        self._state = outcome
        self._deadlines.clear()
        already_refunded = self._refunded
        currency = self._input.order.paid.currency
        self._resolution = Resolution(
            outcome=outcome,
            refunded=Money(amount=refund, currency=currency),
            # Filled in from the ledger's answer by _settle.
            released_to_seller=Money(amount=0, currency=currency),
            decided_by=actor,
            timer=timer,
            reason=reason,
        )
        self._record(event, before, outcome, actor, timer, {**(details or {}), "refund": refund, "reason": reason})
        if hearing.hears_appeal(self._intervention):
            # The first ruling's money already moved: the final ruling moves only the difference.
            self._pending_effects.append(_AdjustAfterAppeal(delta=refund - already_refunded))
            hearing.make_final(self._active_intervention())
        else:
            self._pending_effects.append(_Settle(refund=refund, step=event, release_order=not appealable))
        if appealable:
            hearing.open_appeal_window(self._active_intervention())
            self._open_deadlines(lifecycle.STAGES[outcome].opens, workflow.now())
        self._upsert_search_attributes()
        self._notify_stage()

    def _record(self, kind: str, before: DisputeState | None, after: DisputeState,
                actor: Actor | None, timer: DeadlineKind | None = None, details: dict | None = None) -> None:
        self._events_total += 1
        self._events.append(DisputeEvent(
            seq=self._events_total, at=workflow.now(), kind=kind, state_before=before,
            state_after=after, actor=actor, timer=timer, details=details or {},
        ))
        self._facts.observe(self._events[-1], self._policy)
        self._changes += 1

    def _set_stage_deadlines(self) -> None:
        self._deadlines.clear()
        self._open_deadlines(lifecycle.STAGES[self._state].opens, workflow.now())
        self._upsert_search_attributes()

    def _open_deadlines(self, kinds: tuple[DeadlineKind, ...], start: datetime) -> None:
        for kind in kinds:
            self._open_deadline(kind, start)

    def _open_deadline(self, kind: DeadlineKind, start: datetime) -> None:
        """The table's deadline `kind`, counted from `start`, for whoever must act on it."""
        clock = lifecycle.CLOCKS[kind]
        order = self._input.order
        party = {Role.BUYER: order.buyer_id, Role.SELLER: order.seller_id}.get(clock.role)
        self._set_window_deadline(kind, clock.role, party or hearing.who_acts(self._active_intervention()), start,
                                  clock.window(self._policy, self._situation()), clock.consequence)

    def _set_window_deadline(self, kind: DeadlineKind, role: Role, party_id: str, start: datetime,
                             window: Window, consequence: str) -> None:
        """A deadline `window` after `start`; one in working days remembers how it was counted."""
        self._set_deadline(kind, role, party_id, self._policy.due_at(start, window), consequence,
                           counted_from=start if window.is_working_days else None, working_days=window.working_days)

    def _set_deadline(self, kind: DeadlineKind, role: Role, party_id: str, due_at: datetime,
                      consequence: str, *, counted_from: datetime | None = None,
                      working_days: int | None = None) -> None:
        """Open or replace a deadline; the clock re-plans, so a replaced timer is cancelled."""
        now = workflow.now()
        previous = self._deadlines.get(kind)
        if working_days is None and previous is not None and previous.due_at == due_at:
            # Handed to someone else at the same due time: still counted as it was.
            counted_from, working_days = previous.counted_from, previous.working_days
        self._deadlines[kind] = Deadline(
            kind=kind, role=role, party_id=party_id, set_at=now, due_at=due_at, consequence=consequence,
            remind_at=self._policy.reminder_at(due_at, now), counted_from=counted_from, working_days=working_days,
            past_calendar_coverage=(counted_from is not None
                                    and self._policy.calendar.counts_uncovered(counted_from, due_at)),
        )
        self._changes += 1

    def _expire(self, deadline: Deadline) -> None:
        """A deadline passed with nobody acting: the table says what follows."""
        kind = deadline.kind
        lapse = lifecycle.CLOCKS[kind].lapse
        lapsed = {"due_at": deadline.due_at.isoformat()}
        if isinstance(lapse, Close):
            self._close(lapse.outcome, None, kind, refund=self._request.amount.amount if lapse.refund_requested else 0,
                        reason=f"{kind.value} window lapsed", event="deadline_lapsed", details=lapsed)
        elif isinstance(lapse, ToSeniorQueue):
            self._breach_sla(deadline)
        elif isinstance(lapse, EvidenceMissed):
            hearing.settle_requests(self._active_intervention(), deadline.role, "missed")
            del self._deadlines[kind]
            self._record("evidence_missed", self._state, self._state, None, kind, lapsed)
            self._upsert_search_attributes()
            self._notify_stage()
        else:  # RulingFinal
            for appeal_kind in hearing.APPEAL_DEADLINES:
                self._deadlines.pop(appeal_kind, None)
            if self._intervention is not None:
                hearing.make_final(self._intervention)
            self._record("appeal_window_closed", self._state, self._state, None, kind, lapsed)
            self._upsert_search_attributes()

    def _breach_sla(self, deadline: Deadline) -> None:
        """A mediator SLA passed: flag the case and put it in the senior queue with fresh SLAs."""
        intervention = self._active_intervention()
        hearing.breach(intervention, deadline.kind, self._limits.sla_breaches_listed)
        # A missed take keeps the ruling SLA counted from escalation; a missed ruling gives
        # the senior a fresh one.
        kinds = hearing.SLA_DEADLINES if deadline.kind == DeadlineKind.MEDIATOR_RULE else (DeadlineKind.MEDIATOR_TAKE,)
        self._open_deadlines(kinds, workflow.now())
        self._record("sla_breached", self._state, self._state, None, deadline.kind,
                     {"due_at": deadline.due_at.isoformat(), "breaches": intervention.sla_breach_count})
        self._upsert_search_attributes()
        self._notify_stage()

    def _remind(self, deadline: Deadline) -> None:
        self._deadlines[deadline.kind] = deadline.model_copy(update={"reminded": True})
        self._record("reminder_sent", self._state, self._state, None, deadline.kind,
                     {"recipient": deadline.party_id, "due_at": deadline.due_at.isoformat()})
        self._notify([NotificationMessage(
            id=f"{self._input.dispute_id}-remind-{deadline.kind.value}-{int(deadline.due_at.timestamp())}",
            dispute_id=self._input.dispute_id,
            recipient_role=deadline.role,
            recipient_id=deadline.party_id,
            kind="deadline_reminder",
            subject=f"Reminder: {deadline.kind.value.replace('_', ' ')} is due at {deadline.due_at.isoformat()}",
            data={"deadline": deadline.kind.value, "due_at": deadline.due_at.isoformat(),
                  "consequence": deadline.consequence},
        )])

    def _notify_stage(self) -> None:
        """Tell the parties (and during intervention the mediator) what happened and what is due."""
        order = self._input.order
        last = self._events[-1]
        recipients = [(Role.BUYER, order.buyer_id), (Role.SELLER, order.seller_id)]
        if self._state == S.PLATFORM_INTERVENING:
            intervention = self._active_intervention()
            recipients.append((Role.MEDIATOR, hearing.who_acts(intervention)))
        messages = []
        for role, party in recipients:
            due = sorted((d for d in self._deadlines.values() if d.party_id == party), key=lambda d: d.due_at)
            data = {"state": self._state.value, "event": last.kind}
            if due:
                data |= {"action_due": due[0].kind.value, "due_at": due[0].due_at.isoformat(),
                         "consequence": due[0].consequence}
            messages.append(NotificationMessage(
                id=f"{self._input.dispute_id}-e{last.seq}-{role.value}",
                dispute_id=self._input.dispute_id,
                recipient_role=role,
                recipient_id=party,
                kind="state_changed",
                subject=f"Dispute {self._input.dispute_id}: {last.kind.replace('_', ' ')}",
                data=data,
            ))
        self._notify(messages)

    def _notify(self, messages: list[NotificationMessage]) -> None:
        """Queue one change's messages; one snapshot of the case per change is enough for the
        casebook and reporting, and keeps the history small."""
        self._pending_effects.append(_Notify(Notifications(
            dispute_id=self._input.dispute_id, messages=messages, case=self._case(),
            report=self._facts.model_copy(deep=True))))

    def _case(self) -> CaseSnapshot:
        """The case as of its last event, for the casebook and the search attributes alike."""
        intervention = self._intervention if self._state == S.PLATFORM_INTERVENING else None
        mediator = intervention.mediator_id if intervention else None
        upcoming = min(self._deadlines.values(), key=lambda d: (d.due_at, d.kind.value), default=None)
        order = self._input.order
        return CaseSnapshot(
            seq=self._events[-1].seq, order_id=order.order_id, buyer_id=order.buyer_id, seller_id=order.seller_id,
            state=self._state, reason=self._request.reason, requested=self._request.amount,
            opened_at=self._opened_at,
            escalated_at=self._intervention.escalated_at if self._intervention else None,
            urgent=bool(intervention and intervention.urgent),
            urgent_concern=intervention.urgent_concern if intervention else None,
            awaiting_mediator=intervention is not None and mediator is None,
            needs_senior=bool(intervention and intervention.needs_senior),
            mediator_id=mediator,
            next_due_at=upcoming.due_at if upcoming else None,
            next_due_kind=upcoming.kind if upcoming else None,
        )

    def _upsert_search_attributes(self) -> None:
        case = self._case()
        workflow.upsert_search_attributes([
            SearchAttributes.STATE.value_set(case.state.value),
            SearchAttributes.NEXT_DEADLINE.value_set(case.next_due_at) if case.next_due_at
            else SearchAttributes.NEXT_DEADLINE.value_unset(),
            SearchAttributes.MEDIATOR.value_set(case.mediator_id) if case.mediator_id
            else SearchAttributes.MEDIATOR.value_unset(),
            SearchAttributes.AWAITING_MEDIATOR.value_set(case.awaiting_mediator),
            SearchAttributes.URGENT.value_set(case.urgent),
            SearchAttributes.NEEDS_SENIOR.value_set(case.needs_senior),
        ])

    # ---- effects -------------------------------------------------------------------

    async def _answer(self) -> ActionResult:
        await self._flush_effects()
        result = self._result()
        self._answered[workflow.current_update_info().id] = result
        return result

    def _answered_before(self) -> ActionResult | None:
        """The answer an earlier run gave this update id, if it did."""
        info = workflow.current_update_info()
        return self._answered.get(info.id) if info is not None else None

    def _result(self) -> ActionResult:
        return ActionResult(dispute_id=self._input.dispute_id, state=self._state, event_seq=self._events_total,
                            allowed_actions=self._allowed_actions(),
                            deadlines=[OpenDeadline.of(d) for d in self._deadlines_soonest_first()])

    async def _flush_effects(self) -> None:
        async with self._effects_lock:
            while self._pending_effects:
                effect = self._pending_effects.pop(0)
                if isinstance(effect, _Notify):
                    await self._send(effect.change)
                elif isinstance(effect, _Settle):
                    await self._settle(effect)
                else:
                    await self._adjust_after_appeal(effect)

    async def _send(self, change: Notifications) -> None:
        """Write a change's notifications. Since the patch, after the update's answer and the
        money, by a task of their own: it writes one change (all its recipients, its read-model
        rows) per activity, in the order of the changes. Before it, one activity per recipient,
        in line with the money, the first carrying the case."""
        if workflow.patched(NOTIFY_ALL_PATCH):
            self._unsent.append(change)
            if self._sending is None or self._sending.done():
                self._sending = asyncio.create_task(self._send_unsent())
        else:
            await self._send_each(change)

    async def _send_each(self, change: Notifications) -> None:
        for index, message in enumerate(change.messages):
            await workflow.execute_activity_method(
                NotificationActivities.notify,
                Notification(**dict(message), case=change.case if index == 0 else None,
                             report=change.report if index == 0 else None),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
            )

    async def _send_unsent(self) -> None:
        while self._unsent:
            await workflow.execute_activity_method(NotificationActivities.notify_all, self._unsent[0],
                                                   start_to_close_timeout=ACTIVITY_TIMEOUT)
            self._unsent.pop(0)

    async def _settle(self, effect: _Settle) -> None:
        order = self._input.order
        settled = await workflow.execute_activity_method(
            LedgerActivities.settle_dispute,
            SettleDispute(
                dispute_id=self._input.dispute_id, order_id=order.order_id, buyer_id=order.buyer_id,
                seller_id=order.seller_id, currency=order.paid.currency, refund=effect.refund, step=effect.step,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=MONEY_RETRY,
        )
        if effect.release_order:
            await self._release_order()
        self._mark_settled()
        self._refunded = settled.refunded
        if self._advance is not None:
            self._advance = self._advance.model_copy(update={"status": settled.advance_status})
        assert self._resolution is not None
        self._resolution = self._resolution.model_copy(update={
            "released_to_seller": Money(amount=settled.released_to_seller, currency=order.paid.currency),
            "settled": True,
        })

    async def _adjust_after_appeal(self, effect: _AdjustAfterAppeal) -> None:
        order = self._input.order
        if effect.delta != 0:
            await workflow.execute_activity_method(
                LedgerActivities.adjust_after_appeal,
                AdjustAfterAppeal(dispute_id=self._input.dispute_id, order_id=order.order_id,
                                  buyer_id=order.buyer_id, seller_id=order.seller_id,
                                  currency=order.paid.currency, delta=effect.delta),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=MONEY_RETRY,
            )
        self._mark_settled()
        adjusted = plans.after_appeal(self._refunded, effect.delta, self._escrow_frozen)
        self._refunded = adjusted.refunded
        assert self._resolution is not None
        self._resolution = self._resolution.model_copy(update={
            "released_to_seller": Money(amount=adjusted.released_to_seller, currency=order.paid.currency),
            "settled": True,
        })

    def _mark_settled(self) -> None:
        """Tell visibility the closed case's money has moved, so reconciliation need not ask."""
        # Cases recorded before this change never upserted here; they replay without it.
        if workflow.patched(SETTLEMENT_PATCH):
            workflow.upsert_search_attributes([SearchAttributes.SETTLEMENT.value_set("settled")])

    async def _release_order(self) -> None:
        """The order may take a new dispute."""
        await workflow.execute_activity_method(
            OrderActivities.release_order,
            ReleaseOrder(order_id=self._input.order.order_id, dispute_id=self._input.dispute_id,
                         ruled=bool(self._intervention and self._intervention.rulings)),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=MONEY_RETRY,
        )
        self._order_released = True

    def _deadlines_soonest_first(self) -> list[Deadline]:
        return sorted(self._deadlines.values(), key=lambda d: d.due_at)

    def _view(self) -> DisputeView:
        currency = self._input.order.paid.currency
        return DisputeView(
            dispute_id=self._input.dispute_id,
            order=self._input.order,
            state=self._state,
            request=self._request,
            policy_version=self._policy.version,
            opened_at=self._opened_at,
            escrow_frozen=Money(amount=self._escrow_frozen, currency=currency),
            refunded=Money(amount=self._refunded, currency=currency),
            offer=self._offer,
            return_address=self._return_address,
            return_shipment=self._return_shipment,
            resubmissions=self._resubmissions,
            intervention=self._intervention,
            advance=self._advance,
            deadlines=self._deadlines_soonest_first(),
            allowed_actions=self._allowed_actions(),
            resolution=self._resolution,
            events=self._events[-self._limits.events_in_view:],
            events_total=self._events_total,
        )
