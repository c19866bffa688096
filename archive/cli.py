"""`disputeflow archive ...`: import histories, legal holds, and purging on demand.

The archive is the one the settings name (DISPUTEFLOW_ARCHIVE, DISPUTEFLOW_DATABASE_URL);
`disputeflow audit verify` checks its chain."""

import argparse
import logging
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(commands: argparse._SubParsersAction) -> None:
    archive = commands.add_parser("archive", help="the archive of closed cases: import, legal holds, purge",
                                  description=__doc__.split("\n\n")[0])
    actions = archive.add_subparsers(dest="archive_command", required=True)
    imports = actions.add_parser("import", help="archive exported history files (e.g. tests/histories)")
    imports.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="a history file or a directory of *.json")
    hold = actions.add_parser("hold", help="put a dispute under legal hold: its records are never purged")
    hold.add_argument("dispute_id")
    hold.add_argument("--reason", required=True, help="why, e.g. the court order's reference")
    hold.add_argument("--by", default="operator", help="who orders the hold")
    release = actions.add_parser("release", help="lift a dispute's legal hold")
    release.add_argument("dispute_id")
    actions.add_parser("holds", help="list the legal holds")
    actions.add_parser("purge", help="purge the records past their keeping period now (the sweeper does it "
                                     "on schedule); logs each one")


def run(args: argparse.Namespace) -> int:
    from archive.service import open_archive
    from config.settings import get_settings
    from database import open_database
    from ledger import Ledger

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    engine = open_database(settings.database_url)
    archive = open_archive(settings, engine)
    if args.archive_command == "import":
        return _import(archive, Ledger(engine), args.paths)
    if args.archive_command == "hold":
        hold = archive.hold(args.dispute_id, args.reason, args.by)
        print(f"{hold.dispute_id} held since {hold.held_at.isoformat()} by {hold.held_by}: {hold.reason}")
    elif args.archive_command == "release":
        if not archive.release(args.dispute_id):
            print(f"{args.dispute_id} is not held", file=sys.stderr)
            return EXIT_FAILED
        print(f"{args.dispute_id} released")
    elif args.archive_command == "holds":
        for hold in archive.holds():
            print(f"{hold.dispute_id}\t{hold.held_at.isoformat()}\t{hold.held_by}\t{hold.reason}")
    else:
        report = archive.purge_expired()
        print(f"purged {len(report.purged)} records; kept {len(report.held)} held disputes past their period")
    return EXIT_OK


def _import(archive, ledger, paths: list[Path]) -> int:  # noqa: ANN001
    from archive.sweeper import archive_run
    from audit import history as histories

    failed = 0
    for path in histories.history_files(paths):
        try:
            history = histories.read_file(path)
            archive_run(archive, ledger, history, history.run_id)
        except (OSError, ValueError, RuntimeError) as error:
            print(f"{path}: not archived: {error}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: archived {history.workflow_id} run {history.run_id}")
    return EXIT_FAILED if failed else EXIT_OK
