"""The vocabulary of the life-cycle table (`workflows.lifecycle`): what a stage offers whom,
which deadlines it opens, and what a deadline's lapse does. Pure data, no workflow code.
"""

from collections.abc import Callable
from dataclasses import dataclass

from identity import Role
from policy import Policy, Window
from workflows.models import Action, AppealStage, DeadlineKind, DisputeKind, DisputeState


@dataclass(frozen=True)
class Situation:
    """What besides its state decides what a case offers and how long its windows are."""

    kind: DisputeKind = DisputeKind.REFUND_ONLY
    shipped: bool = False
    urgent: bool = False
    mediator_assigned: bool = False
    appeal: AppealStage = AppealStage.NONE
    appellant: Role | None = None
    buyer_submitted_evidence: bool = False


@dataclass(frozen=True)
class Condition:
    """When an offer holds, in words (for the README) and as a test of the situation and the role."""

    text: str
    holds: Callable[[Situation, Role], bool]


@dataclass(frozen=True)
class Offer:
    """`action` is open to each of `roles` in its stage, while `when` holds; `refusal`, if set,
    says why not when it does not."""

    roles: tuple[Role, ...]
    action: Action
    when: Condition | None = None
    refusal: str | None = None

    def open_to(self, role: Role, situation: Situation) -> bool:
        return role in self.roles and (self.when is None or self.when.holds(situation, role))


# ---- what a lapse does ---------------------------------------------------------------


@dataclass(frozen=True)
class Close:
    """The dispute closes as `outcome`, refunding the requested amount or nothing."""

    outcome: DisputeState
    refund_requested: bool


@dataclass(frozen=True)
class ToSeniorQueue:
    """A mediator SLA breached: the case is flagged and goes to the senior queue with fresh SLAs."""


@dataclass(frozen=True)
class EvidenceMissed:
    """The request is recorded as missed and the case goes on with what was submitted."""


@dataclass(frozen=True)
class RulingFinal:
    """The appeal windows close: the ruling is final."""


Lapse = Close | ToSeniorQueue | EvidenceMissed | RulingFinal


@dataclass(frozen=True)
class Clock:
    """One kind of deadline: who must act, how long they have, and what happens if they do not.

    `variants` name the situations in which the window differs, for the README."""

    kind: DeadlineKind
    role: Role
    window: Callable[[Policy, Situation], Window]
    lapse: Lapse
    consequence: str
    variants: tuple[tuple[str, Situation], ...] = ()


@dataclass(frozen=True)
class Stage:
    """A state: the actions it offers and the deadlines entering it opens (`opens_when`, if set,
    says on which entries: the appeal windows open only after an appealable ruling)."""

    state: DisputeState
    offers: tuple[Offer, ...]
    opens: tuple[DeadlineKind, ...] = ()
    opens_when: str | None = None
    also: tuple[DeadlineKind, ...] = ()  # deadlines that actions in the stage open
