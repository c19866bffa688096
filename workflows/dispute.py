"""The dispute workflow: one buyer request from opening to closure, with its own clocks.

State changes happen synchronously inside update handlers and timer firings, before
any await, so two actions racing in one workflow task see each other's result. Their
side effects (money, notifications) then run in order under `_effects_lock`.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.notifications import NotificationActivities
    from activities.orders import OrderActivities
    from config.temporal import SearchAttributes
    from identity import Actor, Role
    from money import Money
    from policy import Window
    from workflows import rules
    from workflows.models import (
        Action,
        BuyerAnswerOffer,
        BuyerRevise,
        BuyerShipReturn,
        BuyerWithdraw,
        Deadline,
        DeadlineKind,
        DisputeEvent,
        DisputeInput,
        DisputeKind,
        DisputeState,
        DisputeView,
        FreezeEscrow,
        Notification,
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


@dataclass(frozen=True)
class _Notify:
    notification: Notification


@dataclass(frozen=True)
class _Settle:
    refund: int
    step: str


_Effect = _Notify | _Settle


@workflow.defn
class DisputeWorkflow:
    @workflow.init
    def __init__(self, input: DisputeInput) -> None:
        self._input = input
        self._policy = input.policy
        self._request = input.request
        self._state = S.WAIT_SELLER_AGREE
        self._opened_at = workflow.now()
        self._events: list[DisputeEvent] = []
        self._deadlines: dict[DeadlineKind, Deadline] = {}
        self._escrow_frozen = 0
        self._escrow_checked = False
        self._refunded = 0
        self._offer: Money | None = None
        self._return_address: str | None = None
        self._return_shipment: ReturnShipment | None = None
        self._resubmissions = 0
        self._resolution: Resolution | None = None
        # Bumped by every change the clock must re-plan for.
        self._changes = 0
        self._effects_lock = asyncio.Lock()
        self._pending_effects: list[_Effect] = []
        self._open()

    # ---- run: the clock ------------------------------------------------------------

    @workflow.run
    async def run(self, input: DisputeInput) -> DisputeView:
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
        while not self._state.is_terminal:
            await self._tick()
        # The closing transition's settlement runs in whichever handler made it.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view()

    async def _tick(self) -> None:
        """Sleep until the next deadline or reminder, or until something changes."""
        seen = self._changes
        upcoming = self._next_wake()
        if upcoming is None:
            await workflow.wait_condition(lambda: self._changes != seen)
            return
        at, deadline, is_reminder = upcoming
        delay = at - workflow.now()
        if delay > timedelta(0):
            what = "reminder before" if is_reminder else "deadline"
            try:
                await workflow.wait_condition(
                    lambda: self._changes != seen,
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

    @workflow.update
    async def opened(self) -> DisputeView:
        """Answers the opening request once the escrow is frozen (Update-with-Start)."""
        await workflow.wait_condition(lambda: self._escrow_checked)
        return self._view()

    # ---- updates: seller -----------------------------------------------------------

    @workflow.update(name=Action.SELLER_AGREE_REFUND)
    async def seller_agree_refund(self, args: SellerAgreeRefund) -> DisputeView:
        amount = self._request.amount.amount
        self._close(S.SUCCESS, args.actor, None, refund=amount, reason="seller agreed to refund",
                    event="seller_agreed_refund", details={"note": args.note})
        return await self._answer()

    @seller_agree_refund.validator
    def _validate_seller_agree_refund(self, args: SellerAgreeRefund) -> None:
        self._check(Action.SELLER_AGREE_REFUND, args.actor)

    @workflow.update(name=Action.SELLER_AGREE_RETURN)
    async def seller_agree_return(self, args: SellerAgreeReturn) -> DisputeView:
        self._return_address = args.return_address
        self._move(S.WAIT_BUYER_RETURN_GOODS, "seller_agreed_return", args.actor,
                   details={"return_address": args.return_address, "note": args.note})
        return await self._answer()

    @seller_agree_return.validator
    def _validate_seller_agree_return(self, args: SellerAgreeReturn) -> None:
        self._check(Action.SELLER_AGREE_RETURN, args.actor)

    @workflow.update(name=Action.SELLER_REFUSE)
    async def seller_refuse(self, args: SellerRefuse) -> DisputeView:
        self._move(S.SELLER_REFUSED, "seller_refused", args.actor,
                   details={"reason": args.reason, "evidence": [e.model_dump() for e in args.evidence]})
        return await self._answer()

    @seller_refuse.validator
    def _validate_seller_refuse(self, args: SellerRefuse) -> None:
        self._check(Action.SELLER_REFUSE, args.actor)

    @workflow.update(name=Action.SELLER_OFFER_PARTIAL)
    async def seller_offer_partial(self, args: SellerOfferPartial) -> DisputeView:
        self._offer = args.amount
        self._move(S.WAIT_BUYER_ANSWER_OFFER, "seller_offered_partial", args.actor,
                   details={"amount": args.amount.amount, "currency": args.amount.currency, "note": args.note})
        return await self._answer()

    @seller_offer_partial.validator
    def _validate_seller_offer_partial(self, args: SellerOfferPartial) -> None:
        self._check(Action.SELLER_OFFER_PARTIAL, args.actor)
        requested = self._request.amount
        if args.amount.currency != requested.currency:
            raise rules.invalid(f"the offer must be in {requested.currency}, the currency of the request")
        if not 0 < args.amount.amount < requested.amount:
            raise rules.invalid(
                f"a partial offer must be more than 0 and less than the requested {requested}; "
                "to refund it all, agree to the refund"
            )

    @workflow.update(name=Action.SELLER_CONFIRM_RETURN)
    async def seller_confirm_return(self, args: SellerConfirmReturn) -> DisputeView:
        self._close(S.SUCCESS, args.actor, None, refund=self._request.amount.amount,
                    reason="seller confirmed the returned goods", event="seller_confirmed_return",
                    details={"note": args.note})
        return await self._answer()

    @seller_confirm_return.validator
    def _validate_seller_confirm_return(self, args: SellerConfirmReturn) -> None:
        self._check(Action.SELLER_CONFIRM_RETURN, args.actor)

    # ---- updates: buyer ------------------------------------------------------------

    @workflow.update(name=Action.BUYER_ACCEPT_OFFER)
    async def buyer_accept_offer(self, args: BuyerAnswerOffer) -> DisputeView:
        assert self._offer is not None
        self._close(S.SUCCESS, args.actor, None, refund=self._offer.amount,
                    reason="buyer accepted the seller's partial offer", event="buyer_accepted_offer",
                    details={"amount": self._offer.amount, "note": args.note})
        return await self._answer()

    @buyer_accept_offer.validator
    def _validate_buyer_accept_offer(self, args: BuyerAnswerOffer) -> None:
        self._check(Action.BUYER_ACCEPT_OFFER, args.actor)

    @workflow.update(name=Action.BUYER_REFUSE_OFFER)
    async def buyer_refuse_offer(self, args: BuyerAnswerOffer) -> DisputeView:
        refused = self._offer
        self._offer = None
        self._move(S.SELLER_REFUSED, "buyer_refused_offer", args.actor,
                   details={"amount": refused.amount if refused else None, "note": args.note})
        return await self._answer()

    @buyer_refuse_offer.validator
    def _validate_buyer_refuse_offer(self, args: BuyerAnswerOffer) -> None:
        self._check(Action.BUYER_REFUSE_OFFER, args.actor)

    @workflow.update(name=Action.BUYER_REVISE)
    async def buyer_revise(self, args: BuyerRevise) -> DisputeView:
        previous = self._request
        self._request = args.request
        self._resubmissions += 1
        self._move(S.WAIT_SELLER_AGREE, "buyer_revised", args.actor, details={
            "previous": previous.model_dump(mode="json"),
            "request": args.request.model_dump(mode="json"),
            "resubmission": self._resubmissions,
        })
        return await self._answer()

    @buyer_revise.validator
    def _validate_buyer_revise(self, args: BuyerRevise) -> None:
        self._check(Action.BUYER_REVISE, args.actor)
        if self._resubmissions >= self._policy.max_resubmissions:
            raise rules.not_allowed(
                f"the request has been revised {self._resubmissions} times, the most the policy allows",
                self._state,
            )
        rules.check_request_fits_order(args.request, self._input.order)

    @workflow.update(name=Action.BUYER_WITHDRAW)
    async def buyer_withdraw(self, args: BuyerWithdraw) -> DisputeView:
        self._close(S.CLOSED, args.actor, None, refund=0, reason="buyer withdrew the request",
                    event="buyer_withdrew", details={"reason": args.reason})
        return await self._answer()

    @buyer_withdraw.validator
    def _validate_buyer_withdraw(self, args: BuyerWithdraw) -> None:
        self._check(Action.BUYER_WITHDRAW, args.actor)

    @workflow.update(name=Action.BUYER_SHIP_RETURN)
    async def buyer_ship_return(self, args: BuyerShipReturn) -> DisputeView:
        self._return_shipment = ReturnShipment(
            carrier=args.carrier, tracking_number=args.tracking_number, shipped_at=workflow.now()
        )
        self._move(S.WAIT_SELLER_CONFIRM_GOODS, "buyer_shipped_return", args.actor,
                   details={"carrier": args.carrier, "tracking_number": args.tracking_number})
        return await self._answer()

    @buyer_ship_return.validator
    def _validate_buyer_ship_return(self, args: BuyerShipReturn) -> None:
        self._check(Action.BUYER_SHIP_RETURN, args.actor)

    # ---- transitions ---------------------------------------------------------------

    def _check(self, action: Action, actor: Actor) -> None:
        rules.check_party(action, actor, self._input.order)
        allowed = self._allowed_actions().get(actor.role, [])
        if action not in allowed:
            raise rules.not_allowed(
                f"{action.value} is not possible while the dispute is {self._state.value}"
                + (f"; {actor.role.value} may now: {', '.join(a.value for a in allowed)}" if allowed else ""),
                self._state,
            )

    def _allowed_actions(self) -> dict[Role, list[Action]]:
        return rules.allowed_actions(self._state, self._request.kind, self._input.order.shipped)

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
               refund: int, reason: str, event: str, details: dict | None = None) -> None:
        before = self._state
        self._state = outcome
        self._deadlines.clear()
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
        self._upsert_search_attributes()
        self._pending_effects.append(_Settle(refund=refund, step=event))
        self._notify_stage()

    def _record(self, kind: str, before: DisputeState | None, after: DisputeState,
                actor: Actor | None, timer: DeadlineKind | None = None, details: dict | None = None) -> None:
        self._events.append(DisputeEvent(
            seq=len(self._events) + 1, at=workflow.now(), kind=kind, state_before=before,
            state_after=after, actor=actor, timer=timer, details=details or {},
        ))
        self._changes += 1

    def _set_stage_deadlines(self) -> None:
        self._deadlines.clear()
        order = self._input.order
        policy = self._policy
        plan: list[tuple[DeadlineKind, Role, str, Window, str]] = []
        if self._state == S.WAIT_SELLER_AGREE:
            plan.append((DeadlineKind.SELLER_RESPONSE, Role.SELLER, order.seller_id,
                         policy.seller_response_window(
                             shipped=order.shipped, return_goods=self._request.kind == DisputeKind.RETURN_AND_REFUND),
                         "the refund is granted to the buyer"))
        elif self._state == S.SELLER_REFUSED:
            plan.append((DeadlineKind.BUYER_RESPONSE_AFTER_REFUSAL, Role.BUYER, order.buyer_id,
                         policy.buyer_response_after_refusal, "the dispute closes in the seller's favour"))
        elif self._state == S.WAIT_BUYER_ANSWER_OFFER:
            plan.append((DeadlineKind.BUYER_RESPONSE_TO_OFFER, Role.BUYER, order.buyer_id,
                         policy.buyer_response_to_offer, "the dispute closes without a refund"))
        elif self._state == S.WAIT_BUYER_RETURN_GOODS:
            plan.append((DeadlineKind.BUYER_RETURN_SHIPMENT, Role.BUYER, order.buyer_id,
                         policy.buyer_return_shipment, "the dispute closes without a refund"))
        elif self._state == S.WAIT_SELLER_CONFIRM_GOODS:
            plan.append((DeadlineKind.SELLER_CONFIRM_RETURN, Role.SELLER, order.seller_id,
                         policy.seller_confirm_return, "the refund is granted to the buyer"))
        now = workflow.now()
        for kind, role, party, window, consequence in plan:
            due = policy.due_at(now, window)
            self._deadlines[kind] = Deadline(
                kind=kind, role=role, party_id=party, set_at=now, due_at=due,
                consequence=consequence, remind_at=policy.reminder_at(due, now),
            )
        self._upsert_search_attributes()

    def _expire(self, deadline: Deadline) -> None:
        """A deadline passed with nobody acting: the policy decides."""
        kind = deadline.kind
        requested = self._request.amount.amount
        if kind in (DeadlineKind.SELLER_RESPONSE, DeadlineKind.SELLER_CONFIRM_RETURN):
            self._close(S.SUCCESS, None, kind, refund=requested, reason=f"{kind.value} window lapsed",
                        event="deadline_lapsed", details={"due_at": deadline.due_at.isoformat()})
        else:
            self._close(S.CLOSED, None, kind, refund=0, reason=f"{kind.value} window lapsed",
                        event="deadline_lapsed", details={"due_at": deadline.due_at.isoformat()})

    def _remind(self, deadline: Deadline) -> None:
        self._deadlines[deadline.kind] = deadline.model_copy(update={"reminded": True})
        self._record("reminder_sent", self._state, self._state, None, deadline.kind,
                     {"recipient": deadline.party_id, "due_at": deadline.due_at.isoformat()})
        self._pending_effects.append(_Notify(Notification(
            id=f"{self._input.dispute_id}-remind-{deadline.kind.value}-{int(deadline.due_at.timestamp())}",
            dispute_id=self._input.dispute_id,
            recipient_role=deadline.role,
            recipient_id=deadline.party_id,
            kind="deadline_reminder",
            subject=f"Reminder: {deadline.kind.value.replace('_', ' ')} is due at {deadline.due_at.isoformat()}",
            data={"deadline": deadline.kind.value, "due_at": deadline.due_at.isoformat(),
                  "consequence": deadline.consequence},
        )))

    def _notify_stage(self) -> None:
        """Tell both parties what happened and whoever must act what is now due."""
        order = self._input.order
        last = self._events[-1]
        due = {d.party_id: d for d in self._deadlines.values()}
        for role, party in ((Role.BUYER, order.buyer_id), (Role.SELLER, order.seller_id)):
            deadline = due.get(party)
            data = {"state": self._state.value, "event": last.kind}
            if deadline is not None:
                data |= {"action_due": deadline.kind.value, "due_at": deadline.due_at.isoformat(),
                         "consequence": deadline.consequence}
            self._pending_effects.append(_Notify(Notification(
                id=f"{self._input.dispute_id}-e{last.seq}-{role.value}",
                dispute_id=self._input.dispute_id,
                recipient_role=role,
                recipient_id=party,
                kind="state_changed",
                subject=f"Dispute {self._input.dispute_id}: {last.kind.replace('_', ' ')}",
                data=data,
            )))

    def _upsert_search_attributes(self) -> None:
        next_due = min((d.due_at for d in self._deadlines.values()), default=None)
        workflow.upsert_search_attributes([
            SearchAttributes.STATE.value_set(self._state.value),
            SearchAttributes.NEXT_DEADLINE.value_set(next_due) if next_due
            else SearchAttributes.NEXT_DEADLINE.value_unset(),
        ])

    # ---- effects -------------------------------------------------------------------

    async def _answer(self) -> DisputeView:
        await self._flush_effects()
        return self._view()

    async def _flush_effects(self) -> None:
        async with self._effects_lock:
            while self._pending_effects:
                effect = self._pending_effects.pop(0)
                if isinstance(effect, _Notify):
                    await workflow.execute_activity_method(
                        NotificationActivities.notify, effect.notification,
                        start_to_close_timeout=ACTIVITY_TIMEOUT,
                    )
                else:
                    await self._settle(effect)

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
        await workflow.execute_activity_method(
            OrderActivities.release_order,
            ReleaseOrder(order_id=order.order_id, dispute_id=self._input.dispute_id),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=MONEY_RETRY,
        )
        self._refunded = settled.refunded_from_escrow + settled.refunded_from_seller
        assert self._resolution is not None
        self._resolution = self._resolution.model_copy(update={
            "released_to_seller": Money(amount=settled.released_to_seller, currency=order.paid.currency),
            "settled": True,
        })

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
            deadlines=sorted(self._deadlines.values(), key=lambda d: d.due_at),
            allowed_actions=self._allowed_actions(),
            resolution=self._resolution,
            events=self._events,
        )
