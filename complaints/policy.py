"""The complaint and seller-standing policy as versioned data (seed 004: 行为管理规则).

Pure and deterministic like `policy.model`: the whole `ComplaintPolicy` is recorded in each
complaint's input, and its `standing` part in each seller standing's, so a replay sees
exactly what the case saw. Every number here is a default the platform may change by
publishing a new version.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from policy import Window

_FROZEN = ConfigDict(frozen=True, extra="forbid")

ComplaintType = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]
# Mainland China time: class A points reset at its midnight (每自然年清零).
CHINA_TIME = timedelta(hours=8)
BASIS_POINTS = 10_000


class ViolationClass(StrEnum):
    A = "A"  # general (一般违规)
    B = "B"  # serious (严重违规)


class Compensation(BaseModel):
    """What an upheld complaint pays the buyer from the seller's balance: `rate` of the order,
    at most `cap` of it (the seed caps goodwill compensation at 30% of the item's value),
    both in basis points, rounded down to the minor unit."""

    model_config = _FROZEN

    rate_bp: int = Field(ge=0, le=BASIS_POINTS)
    cap_bp: int = Field(default=3_000, ge=0, le=BASIS_POINTS)

    def amount(self, paid: int) -> int:
        return paid * min(self.rate_bp, self.cap_bp) // BASIS_POINTS


class ComplaintRule(BaseModel):
    """One complaint type: the violation an upheld complaint records, and its compensation."""

    model_config = _FROZEN

    title: str = Field(max_length=100)
    violation_class: ViolationClass
    points: int = Field(ge=0, le=48)
    compensation: Compensation | None = None


class PenaltyTier(BaseModel):
    """Reaching `points` imposes `measures` for `duration` (None: for ever, a permanent ban)."""

    model_config = _FROZEN

    points: int = Field(ge=1)
    measures: tuple[str, ...] = Field(min_length=1)
    duration: timedelta | None = Field(default=None, gt=timedelta(0))


class Reset(BaseModel):
    """When a class's points go back to zero: each calendar year at local midnight of 1 January
    (`yearly`, in `utc_offset`), and/or at the instants listed in `at`."""

    model_config = _FROZEN

    yearly: bool = True
    utc_offset: timedelta = CHINA_TIME
    at: tuple[AwareDatetime, ...] = ()

    def next_after(self, now: datetime) -> datetime | None:
        candidates = [instant for instant in self.at if instant > now]
        if self.yearly:
            local = timezone(self.utc_offset)
            new_year = datetime(now.astimezone(local).year + 1, 1, 1, tzinfo=local)
            candidates.append(new_year)
        return min(candidates).astimezone(timezone.utc) if candidates else None


class ClassRule(BaseModel):
    """How one class's points turn into penalties. `repeating`: the single tier applies again at
    every multiple of its points (class A: each 12 points shields the shop for 12 days)."""

    model_config = _FROZEN

    tiers: tuple[PenaltyTier, ...] = Field(min_length=1)
    repeating: bool = False
    reset: Reset | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        points = [tier.points for tier in self.tiers]
        if points != sorted(set(points)):
            raise ValueError("tiers must have strictly increasing points")
        if self.repeating and len(self.tiers) != 1:
            raise ValueError("a repeating rule has exactly one tier")
        return self

    def crossed(self, before: int, after: int) -> list[tuple[int, PenaltyTier]]:
        """The thresholds reached going from `before` to `after` points, each with its tier."""
        if self.repeating:
            tier = self.tiers[0]
            return [(n * tier.points, tier) for n in range(before // tier.points + 1, after // tier.points + 1)]
        return [(tier.points, tier) for tier in self.tiers if before < tier.points <= after]


class StandingPolicy(BaseModel):
    """A seller standing's rules; recorded when the standing starts, carried across its runs."""

    model_config = _FROZEN

    version: str
    classes: dict[ViolationClass, ClassRule]
    # The standing's view lists this many newest violations (with the total).
    violations_in_view: int = Field(default=50, ge=1)
    # Violation ids remembered so a redelivery counts once, across runs too.
    delivered_ids_kept: int = Field(default=500, ge=10)
    # A run continues as new once its history reaches this many events.
    history_events_per_run: int = Field(default=1_000, ge=50)


class ComplaintPolicy(BaseModel):
    """Every window and rule of the complaint life cycle, versioned."""

    model_config = _FROZEN

    version: str
    types: dict[ComplaintType, ComplaintRule] = Field(min_length=1)
    # The seller accepts or contests within this; silence upholds the complaint.
    seller_response: Window = Window.days(3)
    # A party asked for evidence by the mediator answers within this.
    evidence_response: Window = Window.days(3)
    # The seller may appeal an upheld complaint within this, once.
    appeal: Window = Window.days(10)
    evidence_per_action: int = Field(default=10, ge=0, le=20)
    evidence_requests: int = Field(default=5, ge=1)
    evidence_submissions_per_party: int = Field(default=10, ge=1)
    events_in_view: int = Field(default=50, ge=1)
    standing: StandingPolicy

    def due_at(self, start: datetime, window: Window) -> datetime:
        # Complaint windows are exact durations: the seed states them in days, not working days.
        assert window.duration is not None, "complaint windows are durations"
        return (start + window.duration).astimezone(timezone.utc)

    @model_validator(mode="after")
    def _durations(self) -> Self:
        for name in ("seller_response", "evidence_response", "appeal"):
            if getattr(self, name).duration is None:
                raise ValueError(f"{name} must be a duration")
        return self


DEFAULT_VERSION = "complaints-2026.1"
DEMO_VERSION = "complaints-demo-1"

_SHIELD = "shop_shielded"
_NO_LISTINGS = "new_listings_restricted"
_NO_MESSAGES = "messaging_restricted"
_NO_COMMUNITY = "community_restricted"


def default_standing(version: str = DEFAULT_VERSION, *, a: timedelta = timedelta(days=1),
                     b: timedelta = timedelta(days=1)) -> StandingPolicy:
    """Seed 004's penalties, with every penalty length in units of `a` (class A) and `b`
    (class B) days: the defaults, or seconds for the demo and tests."""
    return StandingPolicy(version=version, classes={
        ViolationClass.A: ClassRule(repeating=True, reset=Reset(), tiers=(
            PenaltyTier(points=12, measures=(_SHIELD,), duration=12 * a),)),
        ViolationClass.B: ClassRule(tiers=(
            PenaltyTier(points=12, measures=(_SHIELD, _NO_LISTINGS), duration=7 * b),
            PenaltyTier(points=24, measures=(_SHIELD, _NO_LISTINGS, _NO_MESSAGES, _NO_COMMUNITY), duration=14 * b),
            PenaltyTier(points=36, measures=("all_goods_delisted", "shop_closed", _NO_LISTINGS, _NO_MESSAGES,
                                             _NO_COMMUNITY), duration=21 * b),
            PenaltyTier(points=48, measures=("permanent_ban",)),
        )),
    })


def _a(title: str, points: int, rate_bp: int | None) -> ComplaintRule:
    compensation = Compensation(rate_bp=rate_bp) if rate_bp is not None else None
    return ComplaintRule(title=title, violation_class=ViolationClass.A, points=points, compensation=compensation)


def _b(title: str, points: int) -> ComplaintRule:
    return ComplaintRule(title=title, violation_class=ViolationClass.B, points=points)


# Seed 004's complaint types. Buyers file the class A ones; the platform files class B ones.
DEFAULT_TYPES: dict[str, ComplaintRule] = {
    "paid_not_shipped": _a("付款未发货 paid but not shipped", 3, 500),
    "shipped_late": _a("未按约定时间发货 shipped late", 3, 500),
    "fake_shipment": _a("虚假发货 fake shipment", 6, 1_000),
    "refused_to_sell": _a("成交不卖 refused to sell after the deal", 6, 500),
    "service_not_honoured": _a("未履行承诺之服务 a promised service not honoured", 4, 500),
    "leaked_personal_data": _b("泄露他人信息 leaked others' personal data", 6),
    "illegal_goods": _b("发布违法商品 illegal goods", 12),
    "ip_infringement": _b("侵犯知识产权 infringing intellectual property", 12),
}


def default_complaint_policy() -> ComplaintPolicy:
    return ComplaintPolicy(version=DEFAULT_VERSION, types=DEFAULT_TYPES, standing=default_standing())


def demo_complaint_policy() -> ComplaintPolicy:
    """The defaults with every window and penalty in seconds instead of days."""
    second = timedelta(seconds=1)
    return ComplaintPolicy(version=DEMO_VERSION, types=DEFAULT_TYPES, seller_response=Window.seconds(60),
                           evidence_response=Window.seconds(60), appeal=Window.seconds(90),
                           standing=default_standing(DEMO_VERSION, a=5 * second, b=5 * second))


def load_complaint_policy(source: str) -> ComplaintPolicy:
    """"default", "demo", or the path of a ComplaintPolicy JSON file."""
    presets = {"default": default_complaint_policy, "demo": demo_complaint_policy}
    if source in presets:
        return presets[source]()
    return ComplaintPolicy.model_validate(json.loads(Path(source).read_text(encoding="utf-8")))
