"""How fast the mediators' queue answers: `python -m casebook.bench_queue [--cases N] [--postgres URL]`.

Fills a fresh casebook (a temporary SQLite file, and with --postgres a throwaway schema
that is dropped afterwards) with N cases through `Casebook.apply`, as the notification
activity writes them: a third waiting for a mediator, some taken, the rest with the parties
or closed. Then times queue pages as `GET /mediation/queue` reads them: the first page, a
page deep in the queue (by cursor), a filtered page, one mediator's own cases, and a walk of
the whole queue. Prints the median and the slowest of each.
"""

import random
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from casebook.service import Casebook, QueueFilter
from database import migrate, session
from database.bench import on_each_database, parser, timed
from money import Money
from workflows.models import CaseSnapshot, DeadlineKind, DisputeState, ReasonCategory

MEDIATORS = [f"mediator-{n}" for n in range(20)]


def fill(engine: Engine, cases: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with session(engine) as db:
        for n in range(cases):
            roll = rng.random()
            intervening = roll < 0.5
            taken = intervening and roll >= 0.35
            state = (DisputeState.PLATFORM_INTERVENING if intervening
                     else rng.choice([DisputeState.WAIT_SELLER_AGREE, DisputeState.SELLER_REFUSED,
                                      DisputeState.SUCCESS, DisputeState.CLOSED]))
            opened = now - timedelta(minutes=rng.randrange(60 * 24 * 30))
            Casebook.apply(db, f"dsp-ORD-{n:06d}-1", CaseSnapshot(
                seq=rng.randrange(1, 40), order_id=f"ORD-{n:06d}", buyer_id=f"buyer-{n % 997}",
                seller_id=f"seller-{n % 211}", state=state, reason=rng.choice(list(ReasonCategory)),
                requested=Money(amount=rng.randrange(100, 1_000_000), currency="CNY"), opened_at=opened,
                escalated_at=opened + timedelta(hours=1) if intervening else None,
                urgent=intervening and rng.random() < 0.05, awaiting_mediator=intervening and not taken,
                needs_senior=intervening and rng.random() < 0.1,
                mediator_id=rng.choice(MEDIATORS) if taken else None,
                # Some SLAs long past (overdue), most in the coming week.
                next_due_at=None if state.is_terminal else now + timedelta(minutes=rng.randrange(-3000, 10_000)),
                next_due_kind=None if state.is_terminal else (
                    DeadlineKind.MEDIATOR_RULE if taken else DeadlineKind.MEDIATOR_TAKE if intervening
                    else DeadlineKind.SELLER_RESPONSE),
            ))


def bench(label: str, engine: Engine, cases: int, rounds: int, limit: int) -> None:
    migrate(engine)
    started = time.perf_counter()
    fill(engine, cases)
    print(f"{label}: {cases} cases written in {time.perf_counter() - started:.1f}s")
    casebook = Casebook(engine)
    waiting = QueueFilter()
    first = casebook.queue(waiting, limit=limit)
    deep_cursor = first.next_cursor
    for _ in range(first.total // limit // 2):  # the middle of the queue
        deep_cursor = casebook.queue(waiting, limit=limit, cursor=deep_cursor).next_cursor

    def walk() -> int:
        page, seen = casebook.queue(waiting, limit=limit), 0
        while True:
            seen += len(page.cases)
            if page.next_cursor is None:
                return seen
            page = casebook.queue(waiting, limit=limit, cursor=page.next_cursor)

    assert walk() == first.total
    pages = {
        f"first page ({first.total} waiting)": lambda: casebook.queue(waiting, limit=limit),
        "a page in the middle, by cursor": lambda: casebook.queue(waiting, limit=limit, cursor=deep_cursor),
        "urgent quality cases": lambda: casebook.queue(
            QueueFilter(reason=ReasonCategory.QUALITY, urgent=True), limit=limit),
        "one mediator's own cases": lambda: casebook.queue(QueueFilter(mediator_id=MEDIATORS[0]), limit=limit),
    }
    for name, call in pages.items():
        median, slowest = timed(call, rounds)
        print(f"  {name:<40} limit {limit}: median {median:6.2f} ms, slowest {slowest:6.2f} ms")
    median, slowest = timed(walk, max(rounds // 10, 3))
    print(f"  {'the whole queue, page by page':<40} limit {limit}: median {median:6.1f} ms, slowest {slowest:6.1f} ms")


def main() -> None:
    options = parser(__doc__, cases=10_000, rounds=50)
    options.add_argument("--limit", type=int, default=50)
    args = options.parse_args()
    on_each_database("queue", args.postgres,
                     lambda label, engine: bench(label, engine, args.cases, args.rounds, args.limit))


if __name__ == "__main__":
    main()
