"""The one place configuration is read: environment variables prefixed DISPUTEFLOW_."""

from datetime import timedelta
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, model_validator
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
    # How long Temporal keeps a closed case's history (the namespace's retention, applied by
    # `./dev up`, the compose setup and the tests). It only has to outlast the archive
    # sweeper's interval plus the time an operator needs to notice and fix a failing archive:
    # 14 days spans the Golden Week holiday with a week to spare. See README "The archive".
    temporal_retention: timedelta = Field(default=timedelta(days=14), ge=timedelta(days=1))
    # Where closed cases are archived: "database" (a table of database_url), "dir:/path", or
    # "s3://bucket/prefix" (credentials from the usual AWS variables; any S3-compatible
    # service through archive_s3_endpoint_url).
    archive: str = "database"
    archive_s3_endpoint_url: str | None = None
    # How often the sweeper archives closed runs not yet archived and purges expired records.
    archive_sweep_every: timedelta = Field(default=timedelta(minutes=10), gt=timedelta(0))
    # How long archived records are kept (three years from archiving, which follows the case's
    # completion: China's E-Commerce Law art. 31); legal holds are kept beyond.
    archive_keep_for: timedelta = Field(default=timedelta(days=3 * 365 + 1), gt=timedelta(0))
    database_url: str = "sqlite:///.data/disputeflow.db"
    # "default" (domain defaults), "demo" (windows of seconds) or a path to a policy JSON file.
    policy: str = "default"
    # /healthz and the start-up logs warn when the policy's calendar has fewer days left.
    calendar_warning_days: int = Field(default=60, ge=0)
    tokens: dict[str, TokenGrant] = DEVELOPMENT_TOKENS
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Channels the dispatcher delivers outbox messages to: "log", "webhook". The worker only
    # writes the outbox and needs none of these.
    notification_channels: list[str] = ["log"]
    notification_webhook_url: str | None = None
    # A failed delivery is retried after 5 s, then twice as long each time up to 15 min; the
    # 12th failure (about an hour of outage) dead-letters the message for an operator.
    notification_max_attempts: int = Field(default=12, ge=1, le=100)
    notification_retry_first_seconds: float = Field(default=5.0, gt=0)
    notification_retry_max_seconds: float = Field(default=900.0, gt=0)
    # How often an idle dispatcher looks for due messages.
    notification_poll_seconds: float = Field(default=1.0, gt=0)
    # How long a dispatcher holds a message it is delivering before another may take it
    # over; well above the webhook's 10 s timeout, so a slow delivery is never doubled.
    notification_lease_seconds: float = Field(default=120.0, gt=0)

    # Observability (README "Operating disputeflow"). The API serves its metrics at /metrics on
    # api_port; the worker has two listeners on metrics_host: its own and the domain's metrics
    # (worker_metrics_port) and the Temporal SDK's exporter (worker_sdk_metrics_port). 0 = off.
    metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)
    worker_sdk_metrics_port: int = Field(default=9465, ge=0, le=65535)
    # Tracing is off until an OTLP/HTTP traces endpoint is set, e.g. http://collector:4318/v1/traces.
    otlp_endpoint: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Worker tuning: how many workflow tasks and activities one worker runs at once, the threads
    # its (synchronous) activities run on, and how many cases it keeps in memory between tasks
    # (the sticky cache; a case evicted is replayed from history on its next task).
    worker_max_concurrent_workflow_tasks: int = Field(default=100, ge=2)
    worker_max_concurrent_activities: int = Field(default=16, ge=1)
    worker_activity_executor_size: int = Field(default=16, ge=1)
    worker_sticky_cache_size: int = Field(default=1000, ge=0)
    # On SIGINT/SIGTERM the worker stops polling and lets in-flight activities finish for this
    # long before cancelling them (they are idempotent: Temporal retries them elsewhere).
    worker_shutdown_grace: timedelta = Field(default=timedelta(seconds=30), ge=timedelta(0))

    @model_validator(mode="after")
    def _executor_runs_every_activity(self) -> "Settings":
        # An activity the executor cannot run at once only waits inside its start-to-close timeout.
        if self.worker_activity_executor_size < self.worker_max_concurrent_activities:
            raise ValueError("worker_activity_executor_size must be at least worker_max_concurrent_activities")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
