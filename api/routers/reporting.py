"""Reporting: KPIs and trends for managers and auditors, quality spot-checks, and the parties'
satisfaction survey. Thin routes over the `reporting` package."""

from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.deps import DisputeId, ServicesDep, require_roles
from api.problems import PROBLEM_RESPONSES, Problem, check_period, problem_type
from identity import Actor, Role
from reporting import surveys
from reporting.kpis import Breakdown, KpiReader, KpiReport, Trends, trends
from reporting.models import Verdict
from reporting.quality import QualityChecks, ReviewRefused

router = APIRouter(tags=["reporting"], responses=PROBLEM_RESPONSES)

ReportReader = Annotated[Actor, Depends(require_roles(Role.MANAGER, Role.AUDITOR))]
Sampler = Annotated[Actor, Depends(require_roles(Role.MANAGER, Role.AUDITOR, Role.QUALITY))]
Reviewer = Annotated[Actor, Depends(require_roles(Role.AUDITOR, Role.QUALITY))]
Party = Annotated[Actor, Depends(require_roles(Role.BUYER, Role.SELLER))]
From = Annotated[AwareDatetime, Query(alias="from", description="Start of the period (inclusive)")]
To = Annotated[AwareDatetime, Query(alias="to", description="End of the period (exclusive)")]
SampleId = Annotated[str, Path(pattern=r"^qs-[0-9a-f]{12}$", description="e.g. qs-5f0c1d2e3a4b")]


def _period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    check_period(start, end, "from", "to")
    return start, end


@router.get("/reports/kpis", operation_id="report_kpis", response_model=KpiReport)
def report_kpis(actor: ReportReader, services: ServicesDep, start: From, end: To,
                by: Breakdown | None = None) -> KpiReport:
    """The KPIs of the cases opened in the period, overall and (with `by`) per group; SLA
    targets are those of the policy new cases get."""
    opened_from, opened_to = _period(start, end)
    return KpiReader(services.engine).report(opened_from, opened_to, services.policy, as_of=datetime.now(UTC), by=by)


@router.get("/reports/trends", operation_id="report_trends", response_model=Trends)
def report_trends(actor: ReportReader, services: ServicesDep, start: From, end: To,
                  limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Trends:
    """The most frequent problem types, the sellers with the most disputes, and cases per reason per week."""
    opened_from, opened_to = _period(start, end)
    return trends(services.engine, opened_from, opened_to, limit=limit)


class SampleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    closed_from: AwareDatetime
    closed_to: AwareDatetime
    # Default: the setting quality_sample_share (10%).
    share: float | None = Field(default=None, gt=0, le=1)
    # Give the seed of an earlier sample to draw it again; otherwise a fresh one is recorded.
    seed: int | None = Field(default=None, ge=0, lt=2**31)


class CheckView(BaseModel):
    dispute_id: str
    mediator_id: str | None
    verdict: Verdict | None
    rule: str | None
    note: str | None
    reviewer_id: str | None
    reviewed_at: datetime | None


class SampleView(BaseModel):
    sample_id: str
    closed_from: datetime
    closed_to: datetime
    share: float
    seed: int
    drawn_by: str
    drawn_at: datetime
    # Per mediator ("" for cases no mediator handled): closed cases and how many were drawn.
    strata: dict[str, list[int]]
    cases: list[CheckView]


def _sample_view(sample, checks) -> SampleView:  # noqa: ANN001
    return SampleView(sample_id=sample.id, closed_from=sample.closed_from, closed_to=sample.closed_to,
                      share=sample.share, seed=sample.seed, drawn_by=sample.drawn_by, drawn_at=sample.drawn_at,
                      strata=sample.strata, cases=[CheckView.model_validate(c, from_attributes=True) for c in checks])


@router.post("/quality/samples", operation_id="draw_quality_sample", response_model=SampleView, status_code=201)
def draw_quality_sample(actor: Sampler, services: ServicesDep, body: SampleRequest) -> SampleView:
    """Draw a share of the cases closed in the period, at least one of each mediator's."""
    closed_from, closed_to = _period(body.closed_from, body.closed_to)
    share = body.share if body.share is not None else services.settings.quality_sample_share
    sample, checks = QualityChecks(services.engine).draw(closed_from, closed_to, share=share, drawn_by=actor,
                                                         now=datetime.now(UTC), seed=body.seed)
    return _sample_view(sample, checks)


@router.get("/quality/samples/{sample_id}", operation_id="get_quality_sample", response_model=SampleView)
def get_quality_sample(actor: Sampler, services: ServicesDep, sample_id: SampleId) -> SampleView:
    found = QualityChecks(services.engine).sample(sample_id)
    if found is None:
        raise Problem(404, "Not found", f"There is no spot-check sample {sample_id}.", type=problem_type("not-found"))
    return _sample_view(*found)


class VerdictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    # Required for a mishandled case: the rule that was broken.
    rule: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    note: Annotated[str, Field(min_length=1, max_length=2000)] | None = None

    @model_validator(mode="after")
    def _mishandled_names_the_rule(self) -> Self:
        if self.verdict == Verdict.MISHANDLED and self.rule is None:
            raise ValueError("a mishandled verdict names the rule that was broken")
        return self


@router.put("/quality/samples/{sample_id}/cases/{dispute_id}", operation_id="review_quality_case",
            response_model=CheckView)
def review_quality_case(actor: Reviewer, services: ServicesDep, sample_id: SampleId, dispute_id: DisputeId,
                        body: VerdictBody) -> CheckView:
    """Record the verdict on a drawn case; never by the mediator who handled it, and once."""
    try:
        check = QualityChecks(services.engine).review(sample_id, dispute_id, actor, body.verdict, body.rule,
                                                       body.note, datetime.now(UTC))
    except ReviewRefused as refused:
        raise Problem(refused.status, "Review refused", str(refused), type=problem_type(refused.slug)) from refused
    return CheckView.model_validate(check, from_attributes=True)


class SurveyAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5)
    comment: Annotated[str, Field(min_length=1, max_length=2000)] | None = None


class SurveyAnswered(BaseModel):
    dispute_id: str
    role: Literal["buyer", "seller"]
    rating: int
    comment: str | None
    answered_at: datetime


@router.post("/disputes/{dispute_id}/survey", operation_id="answer_survey", response_model=SurveyAnswered,
             status_code=201)
def answer_survey(actor: Party, services: ServicesDep, dispute_id: DisputeId, body: SurveyAnswer) -> SurveyAnswered:
    """Rate a final case 1-5, once, within the policy's survey window."""
    try:
        answered = surveys.answer(services.engine, dispute_id, actor, body.rating, body.comment, datetime.now(UTC))
    except surveys.SurveyRefused as refused:
        raise Problem(refused.status, "Survey answer refused", str(refused),
                      type=problem_type(refused.slug)) from refused
    return SurveyAnswered(dispute_id=dispute_id, role=answered.role, rating=answered.rating, comment=answered.comment,
                          answered_at=answered.answered_at)
