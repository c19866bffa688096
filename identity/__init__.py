"""Who is acting: a role and a party id, carried from the API into the workflow's history."""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"
    MEDIATOR = "mediator"
    AUDITOR = "auditor"
    PLATFORM = "platform"
    # Customer-service managers: the reporting figures (README "Reporting").
    MANAGER = "manager"
    # Quality reviewers: spot-check verdicts.
    QUALITY = "quality"


class Actor(BaseModel):
    """The authenticated caller of an action, recorded in the dispute's event trail."""

    model_config = ConfigDict(frozen=True)

    role: Role
    party_id: str
    senior: bool = False
    # The API request that carried the action, so auditors can tie history to access logs.
    request_id: str | None = None
