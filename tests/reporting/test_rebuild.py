"""The rebuild reads a case through the same source as replay: from Temporal while it has the
case, from the archive once retention deleted it; and it equals the live projection."""

from pathlib import Path

from database import make_engine, migrate, session
from reporting.facts import CaseFacts
from reporting.projection import project
from reporting.rebuild import rebuild
from tests.archive.test_outlives_temporal import _close_refunded_case, _delete_from_temporal, _sweep, own_stack  # noqa: F401
from tests.reporting.test_reporting import _rows
from tests.support import Stack


async def test_the_rebuild_reads_deleted_cases_from_the_archive(own_stack: Stack, tmp_path: Path) -> None:
    stack = own_stack
    archived, run_id = await _close_refunded_case(stack)
    in_temporal, _ = await _close_refunded_case(stack)
    await _sweep(stack, archived, run_id)
    await _delete_from_temporal(stack.services.temporal, archived)
    live = _rows(stack.services.engine)
    assert [row["dispute_id"] for row in live[0]] == sorted([archived, in_temporal])

    # A retried or late notification of the same or an older event changes nothing.
    [row] = [r for r in live[0] if r["dispute_id"] == archived]
    older = CaseFacts(seq=row["seq"] - 1, order_id="x", buyer_id="x", seller_id="x", reason="other",
                      currency="CNY", requested=1, opened_at=row["opened_at"])
    with session(stack.services.engine) as db:
        project(db, archived, older)
    assert _rows(stack.services.engine) == live

    rebuilt = make_engine(f"sqlite:///{tmp_path}/rebuilt.db")
    migrate(rebuilt)
    result = await rebuild(stack.services.temporal, stack.services.archive, stack.services.engine, rebuilt,
                           visibility_filter=f"TaskQueue = '{stack.task_queue}'")
    assert (result.projected, result.without_facts, result.missing) == (2, [], [])
    assert _rows(rebuilt) == live
    # In place, as `disputeflow report rebuild` does: the same rows again.
    await rebuild(stack.services.temporal, stack.services.archive, stack.services.engine, stack.services.engine,
                  visibility_filter=f"TaskQueue = '{stack.task_queue}'")
    assert _rows(stack.services.engine) == live
