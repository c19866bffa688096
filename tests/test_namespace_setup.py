"""`disputeflow namespace-setup` on a namespace the cluster does not have yet (as on a fresh
production cluster, where no auto-setup image made one): it is created with the dispute
workflow's search attributes and the configured retention, and a second run changes nothing."""

import uuid
from datetime import timedelta

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from config.temporal import SearchAttributes, connect, namespace_retention
from devstack.namespace_setup import prepare_namespace


async def test_a_missing_namespace_is_created_with_the_search_attributes_and_retention(
        temporal_env: WorkflowEnvironment) -> None:
    client = await connect(temporal_env.client.service_client.config.target_host, f"setup-{uuid.uuid4().hex[:8]}")
    settings = Settings(temporal_retention=timedelta(days=21))
    for _ in range(2):
        await prepare_namespace(client, settings)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace))
    assert {key.name: listed.custom_attributes[key.name] for key in SearchAttributes.ALL} == {
        key.name: key.indexed_value_type for key in SearchAttributes.ALL}
    assert await namespace_retention(client) == timedelta(days=21)
