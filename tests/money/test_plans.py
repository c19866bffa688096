"""The money plans as pure functions: no Temporal, no database, milliseconds.

The ids and codes asserted here are the ones committed histories and ledgers hold."""

from datetime import UTC, datetime

import pytest

from ledger import TransferPhase, TransferRequest, TransferView
from money import plans
from money.plans import CaseParties, Hold, Leg, TransferCode

CASE = CaseParties(dispute_id="dsp-o1-1", order_id="o1", buyer_id="alice", seller_id="acme", currency="CNY")
ESCROW, BUYER, SELLER, FUND = "escrow:o1:CNY", "buyer:alice:CNY", "seller:acme:CNY", "guarantee_fund:platform:CNY"


def _frozen(amount: int) -> Hold:
    return Hold(id="dsp-o1-1-freeze", amount=amount, debit_account_id=ESCROW, pending=True)


def _advanced(amount: int, *, pending: bool) -> Hold:
    return Hold(id="dsp-o1-1-advance", amount=amount, debit_account_id=FUND, pending=pending)


def _legs(batch: list[TransferRequest]) -> list[tuple]:
    return [(t.id.removeprefix("dsp-o1-1-"), t.code, t.phase.value, t.debit_account_id, t.credit_account_id,
             t.amount) for t in batch]


def test_every_leg_derives_the_ids_and_codes_on_the_wire() -> None:
    assert [(leg.id("s"), leg.code.value) for leg in Leg] == [
        ("s-payment", "payment"), ("s-completion", "release"), ("topup-s", "topup"), ("s-freeze", "freeze"),
        ("s-advance", "advance"), ("s-release", "release"), ("s-advance-settlement", "advance_settlement"),
        ("s-advance-clawback", "advance_clawback"), ("s-advance-recovery", "advance_recovery"),
        ("s-advance-recovery-from-seller", "advance_recovery"), ("s-refund", "refund"),
        ("s-refund-from-seller", "refund"), ("s-appeal-adjustment", "appeal_adjustment"),
        ("s-compensation", "complaint_compensation"),
        ("s-compensation-reversal", "complaint_compensation_reversal"),
    ]
    assert all(type(t.code) is str for t in (plans.top_up("q4", 1, "CNY"), plans.payment("o1", 1, "CNY")))


def test_orders_and_the_fund() -> None:
    paid = plans.payment("o1", 10_000, "CNY")
    assert (paid.id, paid.debit_account_id, paid.credit_account_id, paid.amount, paid.order_id, paid.step) == (
        "o1-payment", "payments_clearing:platform:CNY", ESCROW, 10_000, "o1", "order_registered")
    [completed] = plans.completion("o1", "acme", 4_000, "CNY")
    assert (completed.id, completed.code, completed.credit_account_id, completed.step) == (
        "o1-completion", "release", SELLER, "order_completed")
    assert plans.completion("o1", "acme", 0, "CNY") == []
    topped = plans.top_up("q4-1", 50_000, "CNY")
    assert (topped.id, topped.debit_account_id, topped.credit_account_id, topped.dispute_id, topped.step) == (
        "topup-q4-1", "platform_funding:platform:CNY", FUND, None, "guarantee_fund_topped_up")


def test_freeze_and_advance() -> None:
    frozen = plans.freeze("dsp-o1-1", "o1", "acme", "CNY", 9_000)
    assert frozen is not None and _legs([frozen]) == [("freeze", "freeze", "pending", ESCROW, SELLER, 9_000)]
    assert frozen.step == "opened" and plans.freeze("dsp-o1-1", "o1", "acme", "CNY", 0) is None
    held = plans.advance("dsp-o1-1", "o1", "alice", "CNY", 6_000, two_phase=True)
    assert _legs([held]) == [("advance", "advance", "pending", FUND, BUYER, 6_000)] and held.step == "advance_ordered"
    assert plans.advance("dsp-o1-1", "o1", "alice", "CNY", 6_000, two_phase=False).phase == TransferPhase.single


def test_a_refund_from_frozen_escrow_releases_the_rest() -> None:
    plan = plans.settlement(CASE, 3_000, "seller_agreed_refund", _frozen(10_000), None)
    assert _legs(plan.transfers) == [("release", "release", "post_pending", None, None, 7_000),
                                     ("refund", "refund", "single", ESCROW, BUYER, 3_000)]
    assert {t.step for t in plan.transfers} == {"seller_agreed_refund"}
    figures = plan.figures
    assert (figures.refunded, figures.released_to_seller, figures.transfer_ids) == (
        3_000, 7_000, ["dsp-o1-1-release", "dsp-o1-1-refund"])


def test_a_full_refund_voids_the_freeze_and_nothing_refunds_nothing() -> None:
    full = plans.settlement(CASE, 10_000, "ruled", _frozen(10_000), None)
    assert _legs(full.transfers) == [("release", "release", "void_pending", None, None, None),
                                     ("refund", "refund", "single", ESCROW, BUYER, 10_000)]
    assert full.figures.released_to_seller == 0
    none = plans.settlement(CASE, 0, "withdrawn", None, None)
    assert none.transfers == [] and none.figures.refunded == 0


def test_an_order_paid_out_already_refunds_from_the_seller() -> None:
    plan = plans.settlement(CASE, 2_500, "ruled", None, None)
    assert _legs(plan.transfers) == [("refund-from-seller", "refund", "single", SELLER, BUYER, 2_500)]
    assert (plan.figures.refunded_from_seller, plan.figures.refunded) == (2_500, 2_500)


def test_a_held_advance_is_recovered_from_escrow() -> None:
    plan = plans.settlement(CASE, 9_000, "seller_confirmed_return", _frozen(9_000), _advanced(6_000, pending=True))
    assert _legs(plan.transfers) == [
        ("release", "release", "void_pending", None, None, None),
        ("advance-settlement", "advance_settlement", "post_pending", None, None, 6_000),
        ("advance-recovery", "advance_recovery", "single", ESCROW, FUND, 6_000),
        ("refund", "refund", "single", ESCROW, BUYER, 3_000),
    ]
    figures = plan.figures
    assert (figures.advance_kept, figures.advance_returned, figures.refunded, figures.advance_status) == (
        6_000, 0, 9_000, "final")


def test_an_advance_with_nothing_refunded_goes_back_to_the_fund() -> None:
    held = plans.settlement(CASE, 0, "rejected", _frozen(9_000), _advanced(9_000, pending=True))
    assert _legs(held.transfers) == [("release", "release", "post_pending", None, None, 9_000),
                                     ("advance-settlement", "advance_settlement", "void_pending", None, None, None)]
    assert held.figures.advance_status == "clawed_back"
    paid = plans.settlement(CASE, 4_000, "ruled", _frozen(9_000), _advanced(9_000, pending=False))
    assert _legs(paid.transfers) == [
        ("release", "release", "post_pending", None, None, 5_000),
        ("advance-clawback", "advance_clawback", "single", BUYER, FUND, 5_000),
        ("advance-recovery", "advance_recovery", "single", ESCROW, FUND, 4_000),
    ]
    assert (paid.figures.advance_kept, paid.figures.advance_returned, paid.figures.advance_status) == (
        4_000, 5_000, "partly_final")


def test_an_advance_on_a_paid_out_order_is_recovered_from_the_seller() -> None:
    plan = plans.settlement(CASE, 6_000, "ruled", None, _advanced(6_000, pending=False))
    assert _legs(plan.transfers) == [("advance-recovery-from-seller", "advance_recovery", "single", SELLER, FUND,
                                      6_000)]
    assert (plan.figures.recovered_from_seller, plan.figures.refunded) == (6_000, 6_000)


@pytest.mark.parametrize("refund", [0, 1, 4_999, 5_000, 7_000, 10_000, 12_000])
@pytest.mark.parametrize("frozen", [None, 5_000, 10_000])
@pytest.mark.parametrize("advanced", [None, (3_000, True), (8_000, False)])
def test_a_settlement_pays_the_refund_and_conserves_the_escrow(refund, frozen, advanced) -> None:
    plan = plans.settlement(CASE, refund, "ruled", frozen and _frozen(frozen),
                            advanced and _advanced(advanced[0], pending=advanced[1]))
    figures = plan.figures
    assert figures.refunded == refund
    assert figures.refunded_from_escrow + figures.recovered_from_escrow + figures.released_to_seller == (frozen or 0)
    assert figures.advance_kept + figures.advance_returned == (advanced[0] if advanced else 0)
    assert all(t.amount is None or t.amount > 0 for t in plan.transfers)


def test_an_appeal_moves_the_difference_between_the_parties() -> None:
    assert _legs(plans.appeal_adjustment(CASE, 2_000)) == [
        ("appeal-adjustment", "appeal_adjustment", "single", SELLER, BUYER, 2_000)]
    [back] = plans.appeal_adjustment(CASE, -1_500)
    assert (back.debit_account_id, back.credit_account_id, back.amount, back.step) == (
        BUYER, SELLER, 1_500, "mediator_ruled_on_appeal")
    assert plans.appeal_adjustment(CASE, 0) == []
    assert plans.after_appeal(refunded=3_000, delta=2_000, escrow_frozen=10_000).model_dump() == {
        "refunded": 5_000, "released_to_seller": 5_000}
    assert plans.after_appeal(refunded=3_000, delta=9_000, escrow_frozen=10_000).released_to_seller == 0


def _view(id: str, code: str, amount: int, *, phase: str = "single", pending_id: str | None = None,
          dispute_id: str | None = "d1") -> TransferView:
    return TransferView(id=id, debit_account_id="a", credit_account_id="b", amount=amount, currency="CNY", code=code,
                        phase=phase, pending_id=pending_id, pending_status="pending" if phase == "pending" else None,
                        dispute_id=dispute_id, order_id=None, step="s", created_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_outstanding_advances_per_dispute() -> None:
    transfers = [
        _view("topup-1", TransferCode.topup, 50_000, dispute_id=None),
        _view("d1-advance", "advance", 6_000, phase="pending"),
        _view("d2-advance", "advance", 4_000, phase="pending", dispute_id="d2"),
        _view("d3-advance", "advance", 5_000, dispute_id="d3"),
        _view("d4-advance", "advance", 2_000, phase="pending", dispute_id="d4"),
        # d2: the buyer keeps 1,000 of the hold, which the fund recovers; the rest comes back.
        _view("d2-advance-settlement", "advance_settlement", 1_000, phase="post_pending", pending_id="d2-advance",
              dispute_id="d2"),
        _view("d2-advance-recovery", "advance_recovery", 1_000, dispute_id="d2"),
        _view("d3-advance-clawback", "advance_clawback", 5_000, dispute_id="d3"),
        _view("d4-advance-settlement", "advance_settlement", 2_000, phase="void_pending", pending_id="d4-advance",
              dispute_id="d4"),
    ]
    assert plans.outstanding_advances(transfers) == {"d1": 6_000, "d2": 0, "d3": 0, "d4": 0}
    assert plans.funded(transfers) == 50_000
