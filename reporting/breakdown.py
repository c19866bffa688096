"""How the KPIs can be grouped: its own module, as `disputeflow report kpis --by` offers the choices
on every `disputeflow` start, which must not load the reporting queries."""

from enum import StrEnum


class Breakdown(StrEnum):
    REASON = "reason"
    SELLER = "seller"
    MEDIATOR = "mediator"
    URGENCY = "urgency"
    OUTCOME = "outcome"
