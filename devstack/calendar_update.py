"""`disputeflow calendar-update`: move every open case onto the policy the system now runs.

After the next year's arrangement is loaded (README, "Working-day calendar"), run it once
with the same settings as the API and worker (DISPUTEFLOW_POLICY, _TEMPORAL_ADDRESS,
_TASK_QUEUE). Each running case gets the same audited `calendar_update` as
`POST /disputes/{id}/calendar-update` (same update id, so the two never apply twice); a
case on another policy that the new one does not extend is refused and listed. Exit
status 0 when every case took the update, 1 when some refused, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command's parser is built on every `disputeflow` start: it stays light
    from temporalio.client import Client

    from identity import Actor
    from policy import Policy

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


@dataclass
class Report:
    updated: list[str] = field(default_factory=list)
    moved: dict[str, int] = field(default_factory=dict)  # dispute id -> deadlines moved
    refused: dict[str, str] = field(default_factory=dict)  # dispute id -> why


async def update_open_cases(client: Client, task_queue: str, policy: Policy, actor: Actor) -> Report:
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    from config.temporal import Visibility
    from workflows.dispute import DisputeWorkflow
    from workflows.models import CalendarUpdate, DisputeView

    query = str(Visibility.of(DisputeWorkflow.__name__).running().on_task_queue(task_queue))
    report = Report()
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id)
        update = CalendarUpdate(actor=actor, policy=policy)
        try:
            await handle.execute_update(DisputeWorkflow.calendar_update, update, id=update.update_id)
            view: DisputeView = await handle.query(DisputeWorkflow.view)
        except WorkflowUpdateFailedError as error:
            report.refused[execution.id] = getattr(error.cause, "message", str(error.cause))
            continue
        except RPCError as error:  # e.g. the case completed since it was listed
            report.refused[execution.id] = error.message
            continue
        report.updated.append(execution.id)
        last = next((e for e in reversed(view.events) if e.kind == "calendar_updated"), None)
        if last is not None and last.details.get("to_policy") == policy.version and last.details["moved"]:
            report.moved[execution.id] = len(last.details["moved"])
    return report


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("calendar-update", help="move open cases onto the extended calendar of the "
                                 "policy now configured", description=__doc__.split("\n\n")[0])
    parser.add_argument("--operator", default="marketplace", help="platform party id recorded as the actor")


def run(args: argparse.Namespace) -> int:
    from config.settings import get_settings
    from config.temporal import connect
    from identity import Actor, Role
    from policy import PolicyLoadError, load_policy

    settings = get_settings()
    try:
        policy = load_policy(settings.policy)
    except PolicyLoadError as error:
        print(f"calendar-update: {error}")
        return EXIT_USAGE

    async def go() -> Report:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        return await update_open_cases(client, settings.task_queue, policy,
                                       Actor(role=Role.PLATFORM, party_id=args.operator))

    report = asyncio.run(go())
    print(f"policy {policy.version}: {len(report.updated)} open cases updated, "
          f"{len(report.moved)} with deadlines moved, {len(report.refused)} refused")
    for dispute_id, why in sorted(report.refused.items()):
        print(f"  refused {dispute_id}: {why}")
    return EXIT_REFUSED if report.refused else EXIT_OK
