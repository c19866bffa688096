"""`disputeflow report ...`: the KPIs and trends as a table or CSV, spot-check draws, and the
rebuild of the projection from the cases' histories."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from reporting.breakdown import Breakdown

if TYPE_CHECKING:  # the command's parser is built on every `disputeflow` start: it stays light
    from reporting.kpis import Kpis


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("report", help="KPIs, trends, quality spot-checks; rebuild the reporting tables")
    actions = parser.add_subparsers(dest="report_command", required=True)
    now = datetime.now(UTC)
    for name, help_text in (("kpis", "the KPIs of the cases opened in a period"),
                            ("trends", "the most frequent problem types and sellers with most disputes")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--from", dest="start", type=_instant, default=now - timedelta(days=30),
                            help="ISO date or time (UTC unless given); default 30 days ago")
        action.add_argument("--to", dest="end", type=_instant, default=now, help="default now")
        action.add_argument("--format", choices=["table", "csv"], default="table")
    actions.choices["kpis"].add_argument("--by", choices=[b.value for b in Breakdown])
    actions.choices["trends"].add_argument("--limit", type=int, default=10)
    sample = actions.add_parser("sample", help="draw a quality spot-check of the cases closed in a period")
    sample.add_argument("--from", dest="start", type=_instant, required=True)
    sample.add_argument("--to", dest="end", type=_instant, required=True)
    sample.add_argument("--share", type=float, help="default: the setting quality_sample_share (10%%)")
    sample.add_argument("--seed", type=int, help="an earlier sample's seed draws it again")
    sample.add_argument("--by", required=True, help="who draws it (recorded with the sample)")
    actions.add_parser("rebuild", help="rewrite the reporting tables from every case's history")


def kpi_columns(kpis: Kpis) -> dict[str, object]:
    """One group's figures as flat columns (rates as fractions, times in seconds)."""
    row: dict[str, object] = {"group": kpis.group if kpis.group is not None else "(all)", "cases": kpis.cases,
                              "closed": kpis.closed}
    for level in kpis.service_levels:
        row[f"{level.name}"] = level.compliance
        row[f"{level.name}_target"] = level.target_share
        row[f"{level.name}_measured"] = level.measured
    for name, figures in (("response", kpis.response_seconds), ("resolution", kpis.resolution_seconds)):
        row |= {f"{name}_p50_s": figures.p50, f"{name}_p90_s": figures.p90, f"{name}_p99_s": figures.p99}
    row |= {"first_contact_resolution": kpis.first_contact_resolution, "escalation_rate": kpis.escalation_rate,
            "appeal_rate": kpis.appeal_rate, "appeal_change_rate": kpis.appeal_change_rate,
            "mishandled": kpis.mishandled, "satisfaction": kpis.satisfaction.average,
            "outcomes": " ".join(f"{k}={v}" for k, v in kpis.outcomes.items()),
            "refunded": " ".join(f"{a.refunded} {a.currency}" for a in kpis.amounts),
            "advanced": " ".join(f"{a.advanced} {a.currency}" for a in kpis.amounts)}
    return row


def write_rows(rows: list[dict[str, object]], form: str) -> None:
    if not rows:
        return
    if form == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return
    # A table reads better transposed: one line per figure, one column per group.
    names = list(rows[0])
    cells = [[name] + ["" if row.get(name) is None else str(row[name]) for row in rows] for name in names]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def run(args: argparse.Namespace) -> int:
    from archive.service import open_archive
    from config.settings import get_settings
    from config.temporal import connect
    from database import open_database
    from identity import Actor, Role
    from policy import load_policy
    from reporting.kpis import KpiReader, trends
    from reporting.quality import QualityChecks
    from reporting.rebuild import rebuild

    settings = get_settings()
    engine = open_database(settings.database_url)
    if args.report_command == "kpis":
        report = KpiReader(engine).report(args.start, args.end, load_policy(settings.policy),
                                          as_of=datetime.now(UTC), by=Breakdown(args.by) if args.by else None)
        write_rows([kpi_columns(k) for k in (report.overall, *report.groups)], args.format)
        if report.sellers:
            print()
            write_rows([s.model_dump() for s in report.sellers], args.format)
    elif args.report_command == "trends":
        found = trends(engine, args.start, args.end, limit=args.limit)
        write_rows([{"reason": r.key, "cases": r.cases} for r in found.reasons], args.format)
        print()
        write_rows([{"seller": s.key, "cases": s.cases} for s in found.sellers], args.format)
    elif args.report_command == "sample":
        sample, checks = QualityChecks(engine).draw(
            args.start, args.end, share=args.share or settings.quality_sample_share,
            drawn_by=Actor(role=Role.QUALITY, party_id=args.by), now=datetime.now(UTC), seed=args.seed)
        print(f"sample {sample.id} (seed {sample.seed}): {len(checks)} cases")
        for check in checks:
            print(f"  {check.dispute_id}  mediator {check.mediator_id or '-'}")
    else:
        async def go():
            client = await connect(settings.temporal_address, settings.temporal_namespace)
            return await rebuild(client, open_archive(settings, engine), engine, engine)

        result = asyncio.run(go())
        print(f"projected {result.projected} cases"
              + (f"; {len(result.without_facts)} recorded before reporting" if result.without_facts else "")
              + (f"; {len(result.missing)} no longer anywhere" if result.missing else ""))
    return 0
