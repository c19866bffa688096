"""What only reads takes no write lock on SQLite (database/engine.py `reading`): a mediator's
queue, a console page's session lookup, the outbox listings, the readiness check and the other
read paths run beside the writers instead of queueing with them for SQLite's one write lock."""

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from archive.service import open_archive
from casebook.service import Casebook, QueueFilter
from complaints.service import ComplaintService
from config.settings import Settings
from console.sessions import Sessions
from database.bench import Transactions, counted
from notifications.service import NotificationService
from reconciliation.checks import reconcile
from reporting.quality import QualityChecks
from tests.support import Stack

Read = Callable[[Engine, Settings], object]

READS: dict[str, Read] = {
    "the mediation queue": lambda engine, _: Casebook(engine).queue(QueueFilter(), limit=50),
    "a mediator's own cases": lambda engine, _: Casebook(engine).queue(QueueFilter(mediator_id="mia"), limit=50),
    "a case's queue row": lambda engine, _: Casebook(engine).case("dsp-none-1"),
    "the open cases": lambda engine, _: Casebook(engine).open_dispute_ids(),
    "a party's inbox": lambda engine, _: NotificationService(engine).for_party("alice"),
    "a case's notifications": lambda engine, _: NotificationService(engine).for_dispute("dsp-none-1"),
    "the dead letters": lambda engine, _: NotificationService(engine).dead_letters(limit=50),
    "a console session": lambda engine, settings: Sessions(engine, settings).find("no-such-cookie"),
    "a console preference": lambda engine, settings: Sessions(engine, settings).preference("mia"),
    "the legal holds": lambda engine, settings: open_archive(settings, engine).holds(),
    "sellers under penalty": lambda engine, _: ComplaintService(engine).under_penalty(50),
    "a quality sample": lambda engine, _: QualityChecks(engine).sample("no-such-sample"),
    "reconciliation": lambda engine, _: reconcile(engine, {}),
}


def _read_only(seen: Transactions) -> None:
    assert seen.begun >= 1 and seen.write_locked == 0 and seen.commits == 0, seen


@pytest.mark.parametrize("read", READS)
def test_a_read_takes_no_write_lock(app_engine: Engine, read: str) -> None:
    settings = Settings(database_url=app_engine.url.render_as_string(hide_password=False))
    with counted(app_engine) as seen:
        READS[read](app_engine, settings)
    _read_only(seen)


async def test_the_readiness_check_takes_no_write_lock(stack: Stack) -> None:
    with counted(stack.services.engine) as seen:
        response = await stack.http.get("/healthz")
    assert response.status_code == 200, response.text
    _read_only(seen)
