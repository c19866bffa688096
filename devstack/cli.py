"""The `disputeflow` command."""

import argparse
import os
import sys
from pathlib import Path

from archive import cli as archive_commands
from audit import commands as audit_commands
from casebook import cli as casebook_command
from database import SchemaNotReady
from devstack import calendar_update, migrate, namespace_setup, stack
from notifications import cli as notification_commands
from reconciliation import cli as reconcile_command
from reporting import cli as report_commands

# The modules whose subcommands `disputeflow` offers: each has `add_parser(commands)` and `run(args)`.
_SUBCOMMANDS = (audit_commands, archive_commands, reconcile_command, casebook_command, report_commands,
                notification_commands, calendar_update, namespace_setup, migrate)


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except SchemaNotReady as error:
        print(f"disputeflow: {error}", file=sys.stderr)
        return 2


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="disputeflow", description="Durable dispute resolution for marketplaces")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the whole system on embedded defaults until Ctrl-C")
    up.add_argument("--data-dir", type=Path, help="where the Temporal server keeps its state "
                    "(default: .data under DISPUTEFLOW_HOME)")
    up.add_argument("--ui-port", type=int, default=8233)
    up.set_defaults(handler=lambda args: stack.up(args.data_dir, args.ui_port))
    for module in _SUBCOMMANDS:
        # A module adds one or more subcommands; each of them runs through the module's `run`.
        before = set(commands.choices)
        module.add_parser(commands)
        for name in commands.choices.keys() - before:
            commands.choices[name].set_defaults(handler=module.run)
    args = parser.parse_args(argv)
    return args.handler(args)


def run() -> int:
    """The console script: like other Unix tools, stop quietly when a pipe reader closes."""
    try:
        return main()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(run())
