"""The one place configuration is read: environment variables prefixed DISPUTEFLOW_."""

from functools import lru_cache

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from identity import Role


class TokenGrant(BaseModel):
    role: Role
    party_id: str
    senior: bool = False


# Development tokens, documented in the README. Production deployments replace the whole
# map through DISPUTEFLOW_TOKENS (a JSON object) or put a real identity provider in front.
DEVELOPMENT_TOKENS: dict[str, TokenGrant] = {
    "dev-platform": TokenGrant(role=Role.PLATFORM, party_id="marketplace"),
    "dev-buyer-alice": TokenGrant(role=Role.BUYER, party_id="alice"),
    "dev-buyer-bob": TokenGrant(role=Role.BUYER, party_id="bob"),
    "dev-seller-acme": TokenGrant(role=Role.SELLER, party_id="acme"),
    "dev-seller-zenith": TokenGrant(role=Role.SELLER, party_id="zenith"),
    "dev-mediator-mia": TokenGrant(role=Role.MEDIATOR, party_id="mia"),
    "dev-mediator-noah": TokenGrant(role=Role.MEDIATOR, party_id="noah"),
    "dev-senior-sam": TokenGrant(role=Role.MEDIATOR, party_id="sam", senior=True),
    "dev-auditor-ada": TokenGrant(role=Role.AUDITOR, party_id="ada"),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISPUTEFLOW_", env_file=".env", extra="ignore")

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "disputes"
    database_url: str = "sqlite:///.data/disputeflow.db"
    # "default" (domain defaults), "demo" (windows of seconds) or a path to a policy JSON file.
    policy: str = "default"
    # /healthz and the start-up logs warn when the policy's calendar has fewer days left.
    calendar_warning_days: int = Field(default=60, ge=0)
    tokens: dict[str, TokenGrant] = DEVELOPMENT_TOKENS
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Channels the notification activity delivers through besides the outbox: "log", "webhook".
    notification_channels: list[str] = ["log"]
    notification_webhook_url: str | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()
