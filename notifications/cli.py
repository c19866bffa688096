"""`disputeflow dispatch` (the dispatcher) and `disputeflow notifications` (its operators' commands).

Exit codes of `notifications resend`: 0 re-queued, 3 no such message, 4 not dead-lettered
(pending or delivered: nothing to do). `notifications dead-letters` exits 0, listing or not.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command's parser is built on every `disputeflow` start: it stays light
    from notifications.models import OutboxMessage

EXIT_UNKNOWN = 3
EXIT_NOT_DEAD = 4


def add_parser(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("dispatch", help="deliver outbox messages to the external channels until Ctrl-C")
    parser = commands.add_parser("notifications", help="dead-lettered notifications: list and re-send")
    actions = parser.add_subparsers(dest="action", required=True)
    dead = actions.add_parser("dead-letters", help="list messages whose delivery gave up, oldest first")
    dead.add_argument("--limit", type=_int_within(1, 1000), default=100, help="at most this many (1..1000)")
    dead.add_argument("--offset", type=_int_within(0, 1_000_000), default=0, help="skip this many first")
    dead.add_argument("--json", action="store_true", help="one JSON object per line")
    resend = actions.add_parser("resend", help="give a dead-lettered message a fresh set of attempts")
    resend.add_argument("id", help="the notification id, e.g. dsp-ORD-1001-1-e2-buyer")


def run(args: argparse.Namespace) -> int:
    if args.command == "dispatch":
        from notifications import dispatcher

        return dispatcher.main()
    from config.settings import get_settings
    from database import open_database
    from notifications.service import NotDeadLettered, NotificationService, UnknownNotification

    service = NotificationService(open_database(get_settings().database_url))
    if args.action == "dead-letters":
        page, count = service.dead_letters(limit=args.limit, offset=args.offset)
        for message in page:
            print(message.model_dump_json(include=_SHOWN) if args.json else _line(message))
        if not args.json:
            print(f"{count} dead-lettered in all")
        return 0
    try:
        message = service.resend(args.id)
    except UnknownNotification as error:
        print(f"disputeflow: {error}", file=sys.stderr)
        return EXIT_UNKNOWN
    except NotDeadLettered as error:
        print(f"disputeflow: {error}", file=sys.stderr)
        return EXIT_NOT_DEAD
    print(f"{message.id} re-queued: the dispatcher delivers it to the channels that have not confirmed it")
    return 0


_SHOWN = {"id", "dispute_id", "recipient_role", "recipient_id", "kind", "status", "delivered", "attempts",
          "last_attempt_at", "last_error", "created_at"}


def _int_within(low: int, high: int):
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not within {low}..{high}")
        return value

    return parse


def _line(message: OutboxMessage) -> str:
    return (f"{message.id}  {message.kind}  to {message.recipient_role} {message.recipient_id}  "
            f"{message.attempts} attempts, last {message.last_attempt_at:%Y-%m-%d %H:%M:%S}: {message.last_error}")
