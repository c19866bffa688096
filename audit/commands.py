"""`disputeflow audit ...`: export, trail and replay from the command line.

Connects to the Temporal server of the settings (DISPUTEFLOW_TEMPORAL_ADDRESS and
_NAMESPACE) unless --address/--namespace say otherwise; a case the server no longer has
is read from the archive (DISPUTEFLOW_ARCHIVE). Exit status: 0 when everything
asked for was done and every replay passed, 1 when a replay failed or a dispute was not
found, 2 for a usage or connection error, so `audit replay` can gate a deployment.
"""

import argparse
import asyncio
import importlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(commands: Any) -> None:
    """Add the `audit` command group to the `disputeflow` parser's subcommands."""
    audit = commands.add_parser("audit", help="export, replay and read dispute histories (auditors)",
                                description=__doc__.split("\n\n")[0])
    actions = audit.add_subparsers(dest="audit_command", required=True)

    def connection(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--address", help="Temporal frontend host:port (default: from the settings)")
        parser.add_argument("--namespace", help="Temporal namespace (default: from the settings)")

    export = actions.add_parser("export", help="write disputes' full histories as standard Temporal JSON")
    export.add_argument("dispute_ids", nargs="+", metavar="DISPUTE_ID")
    export.add_argument("-o", "--output", type=Path,
                        help="file to write (default: standard output); with several disputes, a directory "
                             "that gets DISPUTE_ID.json each. Beside them, policies/ gets the body of each "
                             "shipped policy version the cases name by ref, which `audit replay` reads")
    export.add_argument("--quiet", action="store_true",
                        help="with several disputes: only the ones not found on standard error")
    connection(export)

    trail = actions.add_parser("trail", help="what happened in a dispute, from its history")
    trail.add_argument("dispute_id", nargs="?", help="a dispute on the server")
    trail.add_argument("--history", type=Path, help="read an exported history file instead of the server")
    trail.add_argument("--json", action="store_true", help="print the trail as JSON")
    trail.add_argument("--mechanics", action="store_true", help="also list workflow-task and activity-start events")
    connection(trail)

    replay = actions.add_parser(
        "replay", help="replay histories against the current workflow code; non-zero exit on any failure",
        description="Replay disputes (by id, by filter, --all) from the server, or exported files "
                    "(--histories), against the current workflow code. Exits 1 if any does not replay.")
    replay.add_argument("dispute_ids", nargs="*", metavar="DISPUTE_ID")
    replay.add_argument("--histories", type=Path, action="append", metavar="PATH",
                        help="an exported history file or a directory of *.json (repeatable); no server needed")
    replay.add_argument("--all", action="store_true", help="every dispute on the server")
    replay.add_argument("--state", help="disputes now in this state (DisputeState)")
    replay.add_argument("--buyer", help="disputes of this buyer id")
    replay.add_argument("--seller", help="disputes of this seller id")
    replay.add_argument("--since", type=_instant, help="opened at or after (ISO 8601; UTC if no offset)")
    replay.add_argument("--until", type=_instant, help="opened before (ISO 8601; UTC if no offset)")
    replay.add_argument("--limit", type=int, help="at most this many (the newest) of the matching disputes")
    replay.add_argument("--workflows", metavar="MODULE:NAME",
                        help="replay against these workflow classes instead of worker.WORKFLOWS "
                             "(a class or a list), e.g. to check a candidate build")
    replay.add_argument("--json", action="store_true", help="print the full report as JSON")
    replay.add_argument("--quiet", action="store_true",
                        help="only the failures on standard error (also with --json); a terminal shows a "
                             "progress bar with the time left instead of a line per dispute")
    connection(replay)

    actions.add_parser("verify", help="recompute the archive's hash chain; exit 1 naming the first broken record",
                       description="Walk the archive (DISPUTEFLOW_ARCHIVE) record by record and check each "
                                   "one's content hash and its link to the record before. Exits 1 at the first "
                                   "record altered, removed or out of order.")


def run(args: argparse.Namespace) -> int:
    handlers = {"export": _export, "trail": _trail, "replay": _replay, "verify": _verify}
    try:
        return asyncio.run(handlers[args.audit_command](args))
    except _UsageError as error:
        print(f"disputeflow audit {args.audit_command}: {error}", file=sys.stderr)
        return EXIT_USAGE


class _UsageError(Exception):
    pass


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _client(args: argparse.Namespace):
    from config.settings import get_settings
    from config.temporal import connect

    settings = get_settings()
    address = args.address or settings.temporal_address
    try:
        return await connect(address, args.namespace or settings.temporal_namespace)
    except Exception as error:  # connection refused, bad address, ...
        raise _UsageError(f"cannot reach Temporal at {address}: {error}") from error


def _archive():
    """The archive the settings name: where cases are read once Temporal deleted them."""
    from archive.service import open_archive
    from config.settings import get_settings
    from database import open_database

    settings = get_settings()
    return open_archive(settings, open_database(settings.database_url))


async def _fetch(args: argparse.Namespace, dispute_id: str):
    client = await _client(args)  # an unreachable server is said before the archive loads
    from archive.source import case_runs
    from audit import history

    try:
        return await case_runs(client, _archive(), dispute_id)
    except history.DisputeNotFound as error:
        print(error, file=sys.stderr)
        return None


async def _export(args: argparse.Namespace) -> int:
    ids = list(dict.fromkeys(args.dispute_ids))
    if len(ids) > 1:
        return await _export_many(args, ids)
    [dispute_id] = ids
    runs = await _fetch(args, dispute_id)
    if runs is None:
        return EXIT_FAILED
    from audit import history as histories

    # Whoever holds the payload keys runs this command: the export is in the clear.
    text = histories.export_json(runs) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        histories.write_policies(args.output.parent, runs)
        print(f"{dispute_id}: {_events(runs)} written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


async def _export_many(args: argparse.Namespace, ids: list[str]) -> int:
    from archive.source import case_runs
    from audit import history as histories
    from observability.progress import Progress

    if args.output is None or (args.output.exists() and not args.output.is_dir()):
        raise _UsageError("several disputes need -o DIRECTORY")
    args.output.mkdir(parents=True, exist_ok=True)
    client, archive = await _client(args), _archive()
    missing = []
    with Progress(len(ids), "cases", quiet=args.quiet) as progress:
        for done, dispute_id in enumerate(ids, 1):
            try:
                runs = await case_runs(client, archive, dispute_id)
            except histories.DisputeNotFound as error:
                missing.append(dispute_id)
                progress.item(f"[{done}/{len(ids)}] {error}", failed=True)
                continue
            path = args.output / f"{dispute_id}.json"
            path.write_text(histories.runs_to_json(runs) + "\n", encoding="utf-8")
            histories.write_policies(args.output, runs)
            progress.item(f"[{done}/{len(ids)}] {dispute_id}: {_events(runs)} written to {path}")
    print(f"{len(ids) - len(missing)} of {len(ids)} disputes exported to {args.output}"
          + (f"; not found: {', '.join(missing)}" if missing else ""), file=sys.stderr)
    return EXIT_FAILED if missing else EXIT_OK


def _events(runs) -> str:
    return f"{sum(len(run.events) for run in runs)} events in {len(runs)} {'run' if len(runs) == 1 else 'runs'}"


async def _trail(args: argparse.Namespace) -> int:
    from audit import history as histories
    from audit.trail import build_trail

    if (args.dispute_id is None) == (args.history is None):
        raise _UsageError("give a DISPUTE_ID or --history FILE")
    if args.history is not None:
        runs = histories.read_runs(args.history)
    else:
        runs = await _fetch(args, args.dispute_id)
        if runs is None:
            return EXIT_FAILED
    trail = build_trail(runs, mechanics=args.mechanics)
    if args.json:
        print(trail.model_dump_json(indent=2))
        return EXIT_OK
    print(f"Dispute {trail.dispute_id} (run {', '.join(trail.runs) or trail.run_id}): {trail.status}"
          + (f", final state {trail.final_state}" if trail.final_state else ""))
    print(f"Opened {trail.opened_at:%Y-%m-%d %H:%M:%S} UTC by {trail.opened_by or '?'} under policy "
          f"{trail.policy_version or '?'}; {trail.event_count} history events")
    for entry in trail.entries:
        print(f"  #{entry.event_id:<4} {entry.at:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f"  {entry.category:<16} {entry.text}")
    print(f"Notifications: {len(trail.notification_ids)}; ledger transfers: {', '.join(trail.transfer_ids) or 'none'}")
    return EXIT_OK


def _load_workflows(spec: str) -> list[type]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise _UsageError(f"--workflows wants MODULE:NAME, got {spec!r}")
    # As `python -m` would: modules of the current directory are importable.
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise _UsageError(f"--workflows {spec}: {error}") from error
    return list(value) if isinstance(value, (list, tuple)) else [value]


async def _replay(args: argparse.Namespace) -> int:
    filtering = any(v is not None for v in (args.state, args.buyer, args.seller, args.since, args.until, args.limit))
    chosen = [bool(args.dispute_ids), bool(args.histories), args.all or filtering]
    if sum(chosen) != 1:
        raise _UsageError("say what to replay: DISPUTE_IDs, --histories PATH, or --all / a filter "
                          "(--state, --buyer, --seller, --since, --until, --limit)")
    # A usage error or an unreachable server is said before the replayer and the workflows load.
    client = None if args.histories else await _client(args)
    from audit import history as histories
    from audit import replay
    from observability.progress import Progress

    replayer = replay.DisputeReplayer(_load_workflows(args.workflows) if args.workflows else None)
    query, truncated = None, False
    if args.histories:
        files = histories.history_files(args.histories)
        if not files:
            raise _UsageError(f"no *.json history files in {', '.join(map(str, args.histories))}")
        total, sources = len(files), replay.from_files(files)
    else:
        if args.dispute_ids:
            ids = list(dict.fromkeys(args.dispute_ids))
        else:
            try:
                dispute_filter = replay.DisputeFilter(state=args.state, buyer_id=args.buyer, seller_id=args.seller,
                                                      started_after=args.since, started_before=args.until,
                                                      limit=args.limit)
            except ValueError as error:
                raise _UsageError(str(error)) from error
            query = dispute_filter.query(replayer.workflow_type)
            ids, truncated = await replay.matching(client, dispute_filter, replayer.workflow_type)
            if not args.quiet:
                print(f"{len(ids)} matching {'dispute' if len(ids) == 1 else 'disputes'}"
                      + (" (the newest; more match)" if truncated else "") + f": {query}", file=sys.stderr)
        total, sources = len(ids), replay.from_server(client, ids, archive=_archive())

    started = time.monotonic()
    done = 0

    with Progress(total, "histories", quiet=args.quiet or args.json) as progress:
        def replayed(outcome: replay.ReplayOutcome) -> None:
            nonlocal done
            done += 1
            verdict = "ok" if outcome.ok else f"{outcome.status.value.upper()}: {outcome.reason}"
            where = f" ({outcome.source})" if outcome.source and not outcome.ok else ""
            progress.item(f"[{done}/{total}] {outcome.dispute_id} {verdict}{where}", failed=not outcome.ok)

        report = await replayer.replay(sources, on_outcome=replayed)
    report = report.model_copy(update={"query": query, "truncated": truncated})
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        elapsed = time.monotonic() - started
        rate = f", {report.total / elapsed:.1f}/s" if elapsed > 0 and report.total else ""
        print(f"{report.total} {'history' if report.total == 1 else 'histories'}: {report.replayed} replayed, {report.nondeterministic} nondeterministic, "
              f"{report.failed} failed, {report.not_found} not found ({elapsed:.2f}s{rate}) "
              f"against {', '.join(report.workflows)}")
        if not report.ok:
            print("REPLAY FAILED: the code would not make the recorded decisions for the disputes above.")
    return EXIT_OK if report.ok else EXIT_FAILED




async def _verify(args: argparse.Namespace) -> int:
    verification = _archive().verify()
    head = verification.head
    print(f"{verification.records} records verified ({verification.purged} purged after their keeping period); "
          + (f"head: record {head.seq} {head.hash}" if head else "the archive is empty"))
    if verification.first_broken is not None:
        print(f"CHAIN BROKEN at {verification.first_broken.problem}")
        return EXIT_FAILED
    return EXIT_OK
