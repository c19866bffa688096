"""The `disputeflow` command.

Exit status, for every subcommand: 0 clean, 1 findings (a replay that fails, a reconciliation
finding, a broken archive chain, a dispute not found), 2 a usage, connection or internal error.

Building the parser imports only the subcommands' parser parts (argparse, no database, no
Temporal): `--help` and a usage error answer at once, and each command imports what it runs.
"""

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from archive import cli as archive_commands
from audit import commands as audit_commands
from casebook import cli as casebook_command
from devstack import calendar_update, migrate, namespace_setup
from notifications import cli as notification_commands
from reconciliation import cli as reconcile_command
from reporting import cli as report_commands

# The modules whose subcommands `disputeflow` offers: each has `add_parser(commands)` and `run(args)`.
_SUBCOMMANDS = (audit_commands, archive_commands, reconcile_command, casebook_command, report_commands,
                notification_commands, calendar_update, namespace_setup, migrate)


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except Exception as error:
        # Only a command that opened the database raises SchemaNotReady, so it is imported by then.
        from database import SchemaNotReady

        if not isinstance(error, SchemaNotReady):
            raise
        print(f"disputeflow: {error}", file=sys.stderr)
        return 2


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="disputeflow", description="Durable dispute resolution for marketplaces")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the whole system on embedded defaults until Ctrl-C")
    up.add_argument("--data-dir", type=Path, help="where the Temporal server keeps its state "
                    "(default: .data under DISPUTEFLOW_HOME)")
    up.add_argument("--ui-port", type=int, default=8233)
    up.set_defaults(handler=_up)
    for module in _SUBCOMMANDS:
        # A module adds one or more subcommands; each of them runs through the module's `run`.
        before = set(commands.choices)
        module.add_parser(commands)
        for name in commands.choices.keys() - before:
            commands.choices[name].set_defaults(handler=module.run)
    args = parser.parse_args(argv)
    return args.handler(args)


def _up(args: argparse.Namespace) -> int:
    from devstack import stack

    return stack.up(args.data_dir, args.ui_port)


EXIT_ERROR = 2


def exit_status(argv: list[str] | None = None) -> int:
    """`main`'s status, with every way out mapped onto the documented codes."""
    try:
        return main(argv)
    except SystemExit as stop:  # argparse's usage errors (2) and --help (0), SystemExit("message")
        if isinstance(stop.code, int) or stop.code is None:
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # Like other Unix tools, stop quietly when a pipe reader closes.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        return 130
    except Exception:  # a bug or an outage nobody caught: never 1, which means "findings"
        traceback.print_exc()
        return EXIT_ERROR


def run() -> None:
    """The console script. It ends the process without the interpreter's teardown: the
    Temporal client's Rust core keeps Tokio threads that may still hold a Python callback
    (a failed connection, a cancelled call), and when one of them takes or releases the GIL
    while CPython finalizes, CPython aborts with "Fatal Python error: PyGILState_Release"
    and status 134 (temporalio/sdk-python#300). Everything worth keeping is flushed first."""
    status = exit_status()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(status)


if __name__ == "__main__":
    run()
