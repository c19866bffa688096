"""The life-cycle table and the rules read from it, without Temporal (milliseconds)."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pydantic_core
import pytest
from pydantic import TypeAdapter, ValidationError
from temporalio.exceptions import ApplicationError

from config.temporal import SearchAttributes, Visibility
from identity import Actor, Role
from money import Money
from policy import Window
from policy.presets import default_policy
from workflows import intervention, lifecycle, rules
from workflows.actions import Call
from workflows.models import (
    ACTION_ARGS,
    Action,
    Appeal,
    AppealStage,
    DeadlineKind,
    DisputeKind,
    DisputeState,
    Intervention,
    OrderSnapshot,
    Ruling,
    RulingDecision,
    SellerAgreeRefund,
)
from workflows.stages import Close, EvidenceMissed, RulingFinal, Situation, ToSeniorQueue

S = DisputeState
POLICY = default_policy()
NOW = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
ORDER = OrderSnapshot(order_id="o1", buyer_id="alice", seller_id="acme",
                      paid=Money(amount=10000, currency="CNY"), shipped=True)
TAKEN_APPEAL = Situation(mediator_assigned=True, appeal=AppealStage.HEARD, appellant=Role.SELLER)


def test_the_readme_shows_the_table_as_it_is():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    shown = readme.split("<!-- lifecycle-table:start -->\n")[1].split("<!-- lifecycle-table:end -->")[0]
    assert shown == lifecycle.readme_tables(POLICY), "regenerate the README's life-cycle tables"


def test_every_state_deadline_and_action_has_its_row():
    assert set(lifecycle.STAGES) == set(DisputeState)
    assert set(lifecycle.CLOCKS) == set(DeadlineKind)
    offered = {offer.action for stage in lifecycle.STAGES.values() for offer in stage.offers}
    assert offered == set(Action)
    for stage in lifecycle.STAGES.values():
        for kind in (*stage.opens, *stage.also):
            assert lifecycle.CLOCKS[kind].role in (Role.BUYER, Role.SELLER, Role.MEDIATOR)


@pytest.mark.parametrize(("kind", "shipped", "seller"), [
    (DisputeKind.REFUND_ONLY, False, ["seller_agree_refund", "seller_refuse", "seller_offer_partial"]),
    (DisputeKind.RETURN_AND_REFUND, False, ["seller_agree_refund", "seller_refuse", "seller_offer_partial"]),
    (DisputeKind.RETURN_AND_REFUND, True,
     ["seller_agree_refund", "seller_agree_return", "seller_refuse", "seller_offer_partial"]),
])
def test_a_return_is_offered_only_for_shipped_goods_asked_back(kind, shipped, seller):
    allowed = lifecycle.allowed_actions(S.WAIT_SELLER_AGREE, Situation(kind=kind, shipped=shipped))
    assert allowed == {Role.BUYER: ["buyer_revise", "buyer_withdraw"], Role.SELLER: seller}


def test_what_intervention_offers_follows_the_mediator_and_the_appeal():
    untaken = lifecycle.allowed_actions(S.PLATFORM_INTERVENING, Situation())
    assert untaken == {Role.BUYER: ["party_submit_evidence", "buyer_withdraw"],
                       Role.SELLER: ["party_submit_evidence"], Role.MEDIATOR: ["mediator_take"]}
    taken = lifecycle.allowed_actions(S.PLATFORM_INTERVENING, Situation(mediator_assigned=True))
    assert taken[Role.MEDIATOR] == ["mediator_request_evidence", "mediator_extend_deadline", "mediator_hand_over",
                                    "mediator_order_advance", "mediator_rule"]
    on_appeal = lifecycle.allowed_actions(S.PLATFORM_INTERVENING, TAKEN_APPEAL)
    assert on_appeal == {Role.BUYER: ["party_submit_evidence"],
                         Role.SELLER: ["party_submit_evidence", "party_withdraw_appeal"],
                         Role.MEDIATOR: ["mediator_request_evidence", "mediator_extend_deadline",
                                         "mediator_hand_over", "mediator_rule"]}


@pytest.mark.parametrize("state", [S.SUCCESS, S.CLOSED])
def test_a_closed_case_is_appealable_only_while_its_window_is_open(state):
    assert lifecycle.allowed_actions(state, Situation(appeal=AppealStage.WINDOW_OPEN)) == {
        Role.BUYER: ["party_appeal"], Role.SELLER: ["party_appeal"]}
    for stage in (AppealStage.NONE, AppealStage.HEARD, AppealStage.FINAL):
        assert lifecycle.allowed_actions(state, Situation(appeal=stage)) == {}


def test_who_may_ever_take_an_action_is_read_from_the_table():
    assert lifecycle.actors_of(Action.SELLER_AGREE_REFUND) == (Role.SELLER,)
    assert lifecycle.actors_of(Action.BUYER_WITHDRAW) == (Role.BUYER,)
    assert lifecycle.actors_of(Action.PARTY_APPEAL) == (Role.BUYER, Role.SELLER)
    assert lifecycle.actors_of(Action.MEDIATOR_RULE) == (Role.MEDIATOR,)


@pytest.mark.parametrize(("kind", "lapse"), [
    (DeadlineKind.SELLER_RESPONSE, Close(S.SUCCESS, refund_requested=True)),
    (DeadlineKind.BUYER_RESPONSE_AFTER_REFUSAL, Close(S.CLOSED, refund_requested=False)),
    (DeadlineKind.BUYER_RESPONSE_TO_OFFER, Close(S.CLOSED, refund_requested=False)),
    (DeadlineKind.BUYER_RETURN_SHIPMENT, Close(S.CLOSED, refund_requested=False)),
    (DeadlineKind.SELLER_CONFIRM_RETURN, Close(S.SUCCESS, refund_requested=True)),
    (DeadlineKind.MEDIATOR_TAKE, ToSeniorQueue()),
    (DeadlineKind.MEDIATOR_RULE, ToSeniorQueue()),
    (DeadlineKind.BUYER_EVIDENCE, EvidenceMissed()),
    (DeadlineKind.SELLER_EVIDENCE, EvidenceMissed()),
    (DeadlineKind.BUYER_APPEAL, RulingFinal()),
    (DeadlineKind.SELLER_APPEAL, RulingFinal()),
])
def test_what_a_lapse_does(kind, lapse):
    assert lifecycle.CLOCKS[kind].lapse == lapse


def test_windows_come_from_the_policy_and_the_situation():
    clocks = lifecycle.CLOCKS
    policy = POLICY.model_copy(update={"seller_response_return_and_refund": Window.seconds(7),
                                       "evidence_response_after_buyer": Window.seconds(3)})
    returning = Situation(kind=DisputeKind.RETURN_AND_REFUND, shipped=True)
    assert clocks[DeadlineKind.SELLER_RESPONSE].window(policy, returning) == Window.seconds(7)
    assert clocks[DeadlineKind.SELLER_RESPONSE].window(policy, Situation()) == POLICY.seller_response_not_shipped
    assert clocks[DeadlineKind.MEDIATOR_TAKE].window(policy, Situation(urgent=True)) == POLICY.mediator_take_urgent
    seller_evidence = clocks[DeadlineKind.SELLER_EVIDENCE]
    assert seller_evidence.window(policy, Situation(buyer_submitted_evidence=True)) == Window.seconds(3)
    assert seller_evidence.window(policy, Situation()) == POLICY.evidence_response
    assert lifecycle.describe_window(Window(duration=timedelta(hours=48))) == "48 h"


def _intervention() -> Intervention:
    ruling = Ruling(decision=RulingDecision.REJECT, refund=Money(amount=0, currency="CNY"), rationale="r",
                    mediator_id="mia", at=NOW)
    return Intervention(escalated_at=NOW, escalated_by=Role.BUYER, reason="r", urgent=False, mediator_id="mia",
                        rulings=[ruling])


def test_the_appeal_is_explicit_state_from_ruling_to_final():
    case = _intervention()
    intervention.open_appeal_window(case)
    assert lifecycle.allowed_actions(S.CLOSED, Situation(**intervention.situation_facts(case)))
    appealed = intervention.file_appeal(case, Appeal(role=Role.BUYER, party_id="alice", reason="r",
                                                     new_information="n", attachments=[], at=NOW))
    assert appealed.mediator_id == "mia" and case.appeal_stage == AppealStage.HEARD
    assert case.needs_senior and case.excluded_mediator_id == "mia" and case.mediator_id is None
    assert intervention.who_acts(case) == intervention.SENIOR_QUEUE
    assert intervention.hears_appeal(case)
    intervention.withdraw_appeal(case)
    assert case.appeal_stage == AppealStage.FINAL and case.mediator_id == "mia"
    assert lifecycle.allowed_actions(S.CLOSED, Situation(**intervention.situation_facts(case))) == {}


def test_a_breach_flags_the_case_for_seniors():
    case = _intervention()
    for _ in range(3):
        intervention.breach(case, DeadlineKind.MEDIATOR_RULE, listed=2)
    assert case.sla_breaches == [DeadlineKind.MEDIATOR_RULE] * 2 and case.sla_breach_count == 3
    assert case.flagged and case.needs_senior and intervention.who_acts(case) == "senior-queue"


@pytest.mark.parametrize(("action", "actor", "message"), [
    (Action.SELLER_REFUSE, Actor(role=Role.BUYER, party_id="alice"), "only the seller of order o1 may seller_refuse"),
    (Action.BUYER_WITHDRAW, Actor(role=Role.BUYER, party_id="bob"), "only the buyer of order o1 may buyer_withdraw"),
    (Action.PARTY_APPEAL, Actor(role=Role.MEDIATOR, party_id="mia"),
     "only the buyer or the seller of order o1 may party_appeal"),
    (Action.MEDIATOR_RULE, Actor(role=Role.SELLER, party_id="acme"), "only a mediator may mediator_rule"),
])
def test_only_the_table_s_actors_on_this_order_may_act(action, actor, message):
    with pytest.raises(ApplicationError, match=message) as refused:
        rules.check_party(action, actor, ORDER, None)
    assert refused.value.type == rules.FORBIDDEN
    rules.check_party(action, Actor(role=lifecycle.actors_of(action)[0], party_id={
        Role.BUYER: "alice", Role.SELLER: "acme", Role.MEDIATOR: "mia"}[lifecycle.actors_of(action)[0]]), ORDER, None)


def test_an_action_travels_with_its_actor_among_its_arguments_on_the_wire():
    actor = Actor(role=Role.SELLER, party_id="acme")
    call = Call(actor=actor, args=SellerAgreeRefund(note="ok"))
    wire = pydantic_core.to_json(call)
    assert json.loads(wire) == {"actor": actor.model_dump(mode="json"), "note": "ok"}
    assert TypeAdapter(Call[SellerAgreeRefund]).validate_json(wire) == call
    with pytest.raises(ValidationError):
        TypeAdapter(Call[SellerAgreeRefund]).validate_python({"actor": actor.model_dump(), "bogus": 1})


def test_every_action_is_declared_by_its_arguments():
    assert list(ACTION_ARGS) == [action.value for action in Action]
    assert all(args.__doc__ for args in ACTION_ARGS.values())


def test_visibility_queries_quote_their_values_and_refuse_escapes():
    query = (Visibility.cases_of("DisputeWorkflow").where(SearchAttributes.BUYER, "alice")
             .where(SearchAttributes.SELLER, None).where("StartTime", NOW, op=">=").running())
    assert str(query) == ("WorkflowType = 'DisputeWorkflow' AND ExecutionStatus != 'ContinuedAsNew' AND "
                          "BuyerId = 'alice' AND StartTime >= '2026-03-02T09:00:00Z' AND ExecutionStatus = 'Running'")
    assert str(Visibility.of("W").closed().on_task_queue("q").matching("Urgent = true")) == \
        "WorkflowType = 'W' AND ExecutionStatus != 'Running' AND TaskQueue = 'q' AND (Urgent = true)"
    with pytest.raises(ValueError, match="quotes"):
        Visibility().where(SearchAttributes.BUYER, "x' OR '1'='1")
