"""`disputeflow reconcile`: run every check, print the findings, exit 1 if there are any."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command's parser is built on every `disputeflow` start: it stays light
    from reconciliation.checks import ReconciliationReport


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("reconcile", help="check the ledger against itself and the disputes (exit 1 on a finding)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from archive.service import open_archive
    from complaints.calls import complaint_ids
    from config.settings import get_settings
    from config.temporal import connect
    from database import open_database
    from observability.progress import Progress
    from reconciliation.checks import reconcile
    from reconciliation.disputes import count_disputes, load_dispute_statuses

    settings = get_settings()
    engine = open_database(settings.database_url)  # first: a missing ledger is said before Temporal is asked

    async def statuses():
        try:
            client = await connect(settings.temporal_address, settings.temporal_namespace)
        except RuntimeError as error:  # refused, unknown host, TLS: the SDK's "Failed client connect"
            raise SystemExit(f"disputeflow reconcile: cannot reach Temporal at {settings.temporal_address}: {error}")
        # Listing the disputes is the long part on a large system: a bar on a terminal.
        with Progress(await count_disputes(client), "disputes", quiet=args.json, lines=False) as progress:
            disputes = await load_dispute_statuses(client, on_listed=progress.item)
        return disputes, set(await complaint_ids(client))

    disputes, complaints = asyncio.run(statuses())
    report = reconcile(engine, disputes, open_archive(settings, engine), complaints)
    print(report.model_dump_json(indent=2) if args.json else render(report))
    return 0 if report.ok else 1


def render(report: ReconciliationReport) -> str:
    lines = [f"checked {report.transfers} transfers of {report.disputes} disputes at {report.checked_at.isoformat()}"]
    for finding in report.findings:
        involved = f" [disputes: {', '.join(finding.dispute_ids)}]" if finding.dispute_ids else ""
        lines.append(f"FAIL {finding.check}: {finding.message}{involved}")
    if report.archive_head:
        lines.append(f"archive head: record {report.archive_head.seq} {report.archive_head.hash} "
                     f"({report.archived_disputes} disputes read from the archive)")
    if report.unverified_disputes:
        lines.append(f"unverified (no worker answered): {', '.join(report.unverified_disputes)}")
    lines.append("reconciled: every check passed" if report.ok else f"{len(report.findings)} finding(s)")
    return "\n".join(lines)
