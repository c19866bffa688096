"""Temporal connection details shared by the worker, the API, the CLI and the tests."""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import Payload
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import Client, Plugin
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

from config.codec import DisputeflowCodec
from config.settings import Settings, get_settings
from security.encryption import PayloadKeyring

# Payloads as plain JSON: how the committed histories were recorded (and still are, so
# they replay without a key), and what every payload is once decoded.
PLAIN_CONVERTER = pydantic_data_converter


@lru_cache
def _codec(current: str | None, keys: tuple[tuple[str, str], ...]) -> DisputeflowCodec:
    return DisputeflowCodec(PayloadKeyring(current=current, keys=dict(keys)).codec() if current is not None else None)


def payload_codec(settings: Settings | None = None) -> DisputeflowCodec:
    """The payload codec: compression, then the settings' payload encryption when keys are configured."""
    keyring = (settings or get_settings()).payload_keys
    if keyring is None:
        return _codec(None, ())
    return _codec(keyring.current, tuple(sorted(keyring.revealed().items())))


def data_converter(settings: Settings | None = None) -> DataConverter:
    """The one data converter of every client and replayer: pydantic JSON, compressed and
    (with the settings' payload keys) encrypted by `payload_codec`."""
    return dataclasses.replace(PLAIN_CONVERTER, payload_codec=payload_codec(settings))


def payload_value(payload: Payload, type_hint: type | None = None) -> Any:
    """A payload read straight from a history (encoded by any codec version, or plain) as a value."""
    return PLAIN_CONVERTER.payload_converter.from_payload(payload_codec().decode_payload(payload), type_hint)


class SearchAttributes:
    """Custom search attributes the dispute workflow keeps current for listing and audit."""

    STATE = SearchAttributeKey.for_keyword("DisputeState")
    BUYER = SearchAttributeKey.for_keyword("BuyerId")
    SELLER = SearchAttributeKey.for_keyword("SellerId")
    ORDER = SearchAttributeKey.for_keyword("OrderId")
    CATEGORY = SearchAttributeKey.for_keyword("ReasonCategory")
    MEDIATOR = SearchAttributeKey.for_keyword("MediatorId")
    NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")
    URGENT = SearchAttributeKey.for_bool("Urgent")
    AWAITING_MEDIATOR = SearchAttributeKey.for_bool("AwaitingMediator")
    NEEDS_SENIOR = SearchAttributeKey.for_bool("NeedsSenior")
    # "settled" once a closed case's money has moved (set by cases opened since the
    # `settlement-search-attribute` patch).
    SETTLEMENT = SearchAttributeKey.for_keyword("Settlement")

    ALL = (STATE, BUYER, SELLER, ORDER, CATEGORY, MEDIATOR, NEXT_DEADLINE, URGENT, AWAITING_MEDIATOR, NEEDS_SENIOR,
           SETTLEMENT)


def dev_server_search_attribute_flags() -> list[str]:
    """`--search-attribute Name=Type` flags that register ours on `temporal server start-dev`."""
    type_names = {str: "Keyword", datetime: "Datetime", bool: "Bool"}
    flags: list[str] = []
    for key in SearchAttributes.ALL:
        flags += ["--search-attribute", f"{key.name}={type_names[key.value_type]}"]
    return flags


async def connect(address: str, namespace: str, settings: Settings | None = None, *, runtime: Runtime | None = None,
                  plugins: Sequence[Plugin] = ()) -> Client:
    """`runtime` carries the worker's SDK metrics exporter, `plugins` the tracing
    (observability.processes); both are independent of the data converter."""
    return await Client.connect(address, namespace=namespace, data_converter=data_converter(settings),
                                runtime=runtime, plugins=list(plugins))
@dataclass(frozen=True)
class Visibility:
    """A Temporal visibility query, built from typed clauses joined by AND. Values are quoted,
    and one that could break out of its quotes is refused (ValueError)."""

    clauses: tuple[str, ...] = ()

    @classmethod
    def of(cls, workflow_type: str) -> "Visibility":
        """Every run of `workflow_type`."""
        return cls().where("WorkflowType", workflow_type)

    @classmethod
    def cases_of(cls, workflow_type: str) -> "Visibility":
        """Every case of `workflow_type`: its newest run only, since a case that continued as
        new is listed once per run."""
        return cls.of(workflow_type).where("ExecutionStatus", "ContinuedAsNew", op="!=")

    def where(self, key: SearchAttributeKey | str, value: str | datetime | None, op: str = "=") -> "Visibility":
        """`key op value`; a `None` value adds nothing, so optional filters chain."""
        if value is None:
            return self
        name = key if isinstance(key, str) else key.name
        return Visibility((*self.clauses, f"{name} {op} {_quoted(value)}"))

    def running(self) -> "Visibility":
        return self.where("ExecutionStatus", "Running")

    def closed(self) -> "Visibility":
        return self.where("ExecutionStatus", "Running", op="!=")

    def on_task_queue(self, task_queue: str) -> "Visibility":
        return self.where("TaskQueue", task_queue)

    def matching(self, visibility_filter: str | None) -> "Visibility":
        """And an operator's own visibility query, as it is."""
        return Visibility((*self.clauses, f"({visibility_filter})")) if visibility_filter else self

    def __str__(self) -> str:
        return " AND ".join(self.clauses)


def rfc3339(instant: datetime) -> str:
    """An instant as visibility compares it: UTC, `Z`."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _quoted(value: str | datetime) -> str:
    text = rfc3339(value) if isinstance(value, datetime) else str(value)
    if "'" in text or "\\" in text:
        raise ValueError(f"a visibility value may not hold quotes or backslashes: {text!r}")
    return f"'{text}'"


def cases_of(workflow_type: str) -> str:
    """`Visibility.cases_of` as a query string, for callers that send no other clause."""
    return str(Visibility.cases_of(workflow_type))


async def apply_retention(client: Client, retention: timedelta) -> None:
    """Set how long the namespace keeps closed executions (`temporal operator namespace
    update --retention`); the dev server has no flag for it and defaults to one day. Only
    the fields set are changed."""
    ttl = Duration()
    ttl.FromTimedelta(retention)
    await client.workflow_service.update_namespace(UpdateNamespaceRequest(
        namespace=client.namespace, config=NamespaceConfig(workflow_execution_retention_ttl=ttl)))


async def namespace_retention(client: Client) -> timedelta:
    described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
    return described.config.workflow_execution_retention_ttl.ToTimedelta()
