"""Temporal connection details shared by the worker, the API, the CLI and the tests."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import Client, Plugin
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

DATA_CONVERTER = pydantic_data_converter


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


async def connect(address: str, namespace: str, *, runtime: Runtime | None = None,
                  plugins: Sequence[Plugin] = ()) -> Client:
    """`runtime` carries the worker's SDK metrics exporter, `plugins` the tracing
    (observability.processes); both are independent of the data converter."""
    return await Client.connect(address, namespace=namespace, data_converter=DATA_CONVERTER, runtime=runtime,
                                plugins=list(plugins))


def cases_of(workflow_type: str) -> str:
    """The visibility query of every case of `workflow_type`: its newest run only, since a
    case that continued as new is listed once per run."""
    return f"WorkflowType = '{workflow_type}' AND ExecutionStatus != 'ContinuedAsNew'"


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
