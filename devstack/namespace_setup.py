"""`disputeflow namespace-setup`: make the Temporal namespace what the system assumes.

Its retention comes from the settings (DISPUTEFLOW_TEMPORAL_RETENTION). `./dev up` and the
test stack call `prepare_namespace` themselves; the compose topology runs this command
once before the worker and the API start. Running it again changes nothing.
"""

import argparse
import asyncio

from temporalio.client import Client

from config.settings import Settings, get_settings
from config.temporal import apply_retention, connect


async def prepare_namespace(client: Client, settings: Settings) -> None:
    await apply_retention(client, settings.temporal_retention)


def add_parser(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("namespace-setup", help="apply the configured retention to the Temporal namespace")


def run(args: argparse.Namespace) -> int:
    settings = get_settings()

    async def go() -> None:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        await prepare_namespace(client, settings)

    asyncio.run(go())
    print(f"namespace {settings.temporal_namespace}: retention {settings.temporal_retention}")
    return 0
