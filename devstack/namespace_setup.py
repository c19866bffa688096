"""`disputeflow namespace-setup`: make the Temporal namespace what the system assumes.

It creates the namespace if the cluster lacks it, registers the custom search attributes the
dispute workflow keeps current, and applies the retention of the settings
(DISPUTEFLOW_TEMPORAL_RETENTION). `./dev up` and the test stack call `prepare_namespace`
themselves; the compose topology runs this command once before the worker and the API start.
Running it again changes nothing; anything it cannot do (an attribute registered with another
type, a refused request) fails it with a non-zero exit, never silently.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command's parser is built on every `disputeflow` start: it stays light
    from temporalio.client import Client

    from config.settings import Settings


async def prepare_namespace(client: Client, settings: Settings) -> None:
    from config.temporal import apply_retention

    await _ensure_namespace(client, settings)
    await _register_search_attributes(client)
    await apply_retention(client, settings.temporal_retention)


async def _ensure_namespace(client: Client, settings: Settings) -> None:
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
        return
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
    retention = Duration()
    retention.FromTimedelta(settings.temporal_retention)
    await client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=client.namespace, workflow_execution_retention_period=retention))
    # The cluster's namespace caches learn of a new namespace within its refresh interval (10 s
    # by default); registering the attributes needs it known there.
    for _ in range(150):
        try:
            await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=client.namespace))
            return
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.2)


async def _register_search_attributes(client: Client) -> None:
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    from config.temporal import SearchAttributes

    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace))
    wanted = {key.name: key.indexed_value_type for key in SearchAttributes.ALL}
    clashing = {name: listed.custom_attributes[name] for name, kind in wanted.items()
                if name in listed.custom_attributes and listed.custom_attributes[name] != kind}
    if clashing:
        raise SystemExit(f"namespace {client.namespace}: search attributes registered with another type: "
                         f"{', '.join(sorted(clashing))}; the dispute workflow cannot run there")
    missing = {name: kind for name, kind in wanted.items() if name not in listed.custom_attributes}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing))


def add_parser(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("namespace-setup", help="create the Temporal namespace if needed, register the search "
                        "attributes and apply the configured retention")


def run(args: argparse.Namespace) -> int:
    from config.settings import get_settings
    from config.temporal import SearchAttributes, connect

    settings = get_settings()

    async def go() -> None:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        await prepare_namespace(client, settings)

    asyncio.run(go())
    print(f"namespace {settings.temporal_namespace}: {len(SearchAttributes.ALL)} search attributes registered, "
          f"retention {settings.temporal_retention}")
    return 0
