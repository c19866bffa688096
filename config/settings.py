"""The one place configuration is read: environment variables prefixed DISPUTEFLOW_, then the
`.env` file of DISPUTEFLOW_HOME.

Every relative path (the data directory, the SQLite file, `.env`) resolves from one anchor,
DISPUTEFLOW_HOME, never from the current directory: a command run from any folder reads the
same database as the stack. DISPUTEFLOW_HOME is read from the environment only (the `.env` it
names cannot move it) and defaults to the source checkout the code runs from (where `./dev`
lives), or, for an installed package, to `var/disputeflow` under the Python environment's prefix.
"""

import os
import sys
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url

from identity import Role
from security.encryption import PayloadKeyring


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
    "dev-manager-max": TokenGrant(role=Role.MANAGER, party_id="max"),
    "dev-quality-quinn": TokenGrant(role=Role.QUALITY, party_id="quinn"),
}


_CHECKOUT = Path(__file__).resolve().parents[1]


def default_home() -> Path:
    if (_CHECKOUT / "pyproject.toml").is_file():
        return _CHECKOUT
    return Path(sys.prefix) / "var" / "disputeflow"


def _home(given: Any = None) -> Path:
    given = given or os.environ.get("DISPUTEFLOW_HOME")
    return Path(given).expanduser().resolve() if given else default_home()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISPUTEFLOW_", extra="ignore")

    # The anchor of every relative path (see the module docstring).
    home: Path = Field(default_factory=_home)

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
    # Default: the SQLite file disputeflow.db in data_dir. A relative SQLite path resolves from home.
    database_url: str = ""
    # "default" (domain defaults), "demo" (windows of seconds) or a path to a policy JSON file.
    policy: str = "default"
    # The same for complaints and seller standings: "default", "demo" or a ComplaintPolicy JSON file.
    complaint_policy: str = "default"
    # /healthz and the start-up logs warn when the policy's calendar has fewer days left.
    calendar_warning_days: int = Field(default=60, ge=0)
    tokens: dict[str, TokenGrant] = DEVELOPMENT_TOKENS
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Channels the dispatcher delivers outbox messages to: "log", "webhook". The worker only
    # writes the outbox and needs none of these.
    notification_channels: list[str] = ["log"]
    notification_webhook_url: str | None = None
    # Standard Webhooks signing secrets (`whsec_<base64>`): every webhook is signed with each,
    # so during a rotation the old and the new secret both verify. See README "Webhooks".
    notification_webhook_secrets: list[SecretStr] = []
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
    # Encryption of Temporal payloads (README "Keys"): a JSON keyring, or none for plain JSON
    # payloads. Unset, the keyring is read from payload_keys_file if that exists, which is
    # where `disputeflow up` writes a development key.
    payload_keys: PayloadKeyring | None = None
    payload_keys_file: Path = Path(".data/payload-keys.json")
    # The Temporal web UI origins the codec server (/codec) answers cross-origin calls from.
    codec_allowed_origins: list[str] = ["http://127.0.0.1:8233", "http://localhost:8233"]

    @model_validator(mode="after")
    def _keyring_from_file(self) -> "Settings":
        if not self.payload_keys_file.expanduser().is_absolute():
            self.payload_keys_file = self.home / self.payload_keys_file
        if self.payload_keys is None and self.payload_keys_file.is_file():
            self.payload_keys = PayloadKeyring.model_validate_json(self.payload_keys_file.read_bytes())
        return self
    # The share of closed cases a quality spot-check draws when none is asked for (seeds: >= 10%).
    quality_sample_share: float = Field(default=0.10, gt=0, le=1)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        home = _home(getattr(init_settings, "init_kwargs", {}).get("home"))
        return init_settings, env_settings, DotEnvSettingsSource(settings_cls, env_file=home / ".env")

    @field_validator("home", mode="before")
    @classmethod
    def _resolve_home(cls, given: Any) -> Path:
        return _home(given)

    @model_validator(mode="after")
    def _anchor_paths(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'disputeflow.db'}"
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
                and not url.database.startswith("file:") and not Path(url.database).expanduser().is_absolute():
            self.database_url = url.set(database=str(self.home / url.database)).render_as_string(hide_password=False)
        return self

    @property
    def data_dir(self) -> Path:
        """Where the embedded stack keeps its state: the Temporal dev server's and the SQLite database."""
        return self.home / ".data"

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
    # How many long polls for workflow and for activity tasks a worker keeps open at once.
    worker_max_concurrent_workflow_task_polls: int = Field(default=5, ge=2)
    worker_max_concurrent_activity_task_polls: int = Field(default=5, ge=1)
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
