"""The namespace keeps closed cases as long as the settings say, not the dev server's one day."""

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from config.temporal import namespace_retention


async def test_namespace_retention_comes_from_the_settings(temporal_env: WorkflowEnvironment) -> None:
    assert Settings().temporal_retention == timedelta(days=14)
    assert await namespace_retention(temporal_env.client) == timedelta(days=14)
