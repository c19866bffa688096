"""The domain's metrics: case events counted from the notify activity, and the gauges read
from the ledger and the policy at each scrape."""

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from fund import GuaranteeFund
from ledger import Ledger
from observability.metrics import DISPUTES_CLOSED, DISPUTES_OPENED, EVIDENCE_MISSED, SLA_BREACHES
from policy import Policy
from policy.coverage import calendar_coverage
from workflows.models import CaseSnapshot

# The events that take a case to SUCCESS or CLOSED (workflows/dispute.py `_close`).
_CLOSING_EVENTS = frozenset({"seller_agreed_refund", "seller_confirmed_return", "buyer_accepted_offer",
                             "buyer_withdrew", "mediator_ruled", "deadline_lapsed"})


def count_case_event(event: str, case: CaseSnapshot) -> None:
    """Count one event of a case, given the case as it stands after it."""
    reason = case.reason.value
    if event == "opened":
        DISPUTES_OPENED.labels(reason).inc()
    elif event == "sla_breached":
        SLA_BREACHES.labels(reason).inc()
    elif event == "evidence_missed":
        EVIDENCE_MISSED.labels(reason).inc()
    elif event in _CLOSING_EVENTS and case.state.is_terminal:
        DISPUTES_CLOSED.labels(case.state.value, reason, event).inc()


class DomainGauges(Collector):
    """Read at each scrape: the advances the guarantee fund has paid and not yet got back, per
    currency, and the days the policy's working-day calendar is still covered."""

    def __init__(self, ledger: Ledger, policy: Policy, warn_within_days: int):
        self._ledger = ledger
        self._policy = policy
        self._warn_within_days = warn_within_days

    def collect(self) -> Iterator[GaugeMetricFamily]:
        advances = GaugeMetricFamily("disputeflow_advances_outstanding",
                                     "Advances (先行垫付) paid by the guarantee fund and not yet recovered, in minor "
                                     "units of the currency", labels=["currency"])
        funds = GuaranteeFund(self._ledger, self._policy.guarantee_fund_floor)
        for fund in self._ledger.accounts(kind="guarantee_fund"):
            advances.add_metric([fund.currency], funds.statement(fund.currency).outstanding_advances.amount)
        yield advances
        coverage = calendar_coverage(self._policy, self._warn_within_days)
        days = GaugeMetricFamily("disputeflow_calendar_coverage_days_left",
                                 "Days after today the policy's working-day calendar is still covered by a published "
                                 "arrangement (negative once past)", labels=["calendar", "policy_version"])
        days.add_metric([coverage.calendar, coverage.policy_version], coverage.days_left)
        yield days
