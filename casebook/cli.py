"""`disputeflow casebook rebuild`: see casebook.rebuild."""

import argparse
import asyncio


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("casebook", help="the read model of cases behind the mediators' queue")
    actions = parser.add_subparsers(dest="casebook_command", required=True)
    rebuild_parser = actions.add_parser("rebuild", help="refresh every running case's row; retire rows of ended workflows")
    rebuild_parser.add_argument("--filter", help="a Temporal visibility query narrowing the cases asked")


def run(args: argparse.Namespace) -> int:
    from casebook.rebuild import rebuild
    from casebook.service import Casebook
    from config.settings import get_settings
    from config.temporal import connect
    from database import open_database

    settings = get_settings()
    engine = open_database(settings.database_url)

    async def go():
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        return await rebuild(client, Casebook(engine), visibility_filter=args.filter)

    report = asyncio.run(go())
    print(f"recorded {report.recorded} running cases; retired {len(report.ended)} rows of ended workflows"
          + "".join(f"\n  ended: {dispute_id}" for dispute_id in report.ended))
    if report.unanswered:
        print(f"no worker answered for {len(report.unanswered)}: {', '.join(report.unanswered)}")
    return 1 if report.unanswered else 0
