"""The committed histories import into an archive and replay from there, as last year's
cases must at a deployment gate once Temporal has long deleted them."""

import asyncio
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from archive import bundle
from archive.service import open_archive
from audit import history as histories
from audit import replay
from config.settings import Settings, get_settings
from database import make_engine
from devstack import cli

HISTORIES = Path(__file__).parent.parent / "histories"


async def test_committed_histories_import_into_an_archive_and_replay_from_it(
        temporal_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPUTEFLOW_DATABASE_URL", f"sqlite:///{tmp_path}/app.db")
    monkeypatch.setenv("DISPUTEFLOW_ARCHIVE", f"dir:{tmp_path}/archive")
    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(cli.main, ["migrate"]) == 0
        assert await asyncio.to_thread(cli.main, ["archive", "import", str(HISTORIES)]) == 0
        files = histories.history_files([HISTORIES])
        dispute_ids = [histories.read_file(path).workflow_id for path in files]
        client = temporal_env.client
        address = ["--address", client.service_client.config.target_host, "--namespace", client.namespace]
        # The test server never ran these cases: every history comes from the archive.
        assert await asyncio.to_thread(cli.main, ["audit", "replay", "--quiet", *dispute_ids, *address]) == 0
        assert await asyncio.to_thread(cli.main, ["audit", "trail", dispute_ids[0], *address]) == 0
        assert await asyncio.to_thread(cli.main, ["audit", "verify"]) == 0
    finally:
        get_settings.cache_clear()

    settings = Settings(database_url=f"sqlite:///{tmp_path}/app.db", archive=f"dir:{tmp_path}/archive")
    archive = open_archive(settings, make_engine(settings.database_url))
    report = await replay.DisputeReplayer().replay(replay.from_server(client, dispute_ids, archive=archive))
    assert report.ok and report.replayed == len(files) == len(list(HISTORIES.glob("*.json"))), [o.reason for o in report.outcomes if not o.ok]
    # Each case's final part was rebuilt from its history's result: state and policy as recorded.
    for path in files:
        recorded = histories.read_file(path)
        case = archive.case(recorded.workflow_id)
        assert case.final is not None and case.final.view.dispute_id == recorded.workflow_id
        assert case.final.policy.version == case.final.view.policy_version
        assert case.histories[0].events == recorded.events
    # Importing again adds nothing.
    head = archive.head()
    monkeypatch.setenv("DISPUTEFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DISPUTEFLOW_ARCHIVE", settings.archive)
    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(cli.main, ["archive", "import", str(HISTORIES)]) == 0
    finally:
        get_settings.cache_clear()
    assert archive.head() == head


@pytest.mark.parametrize("name, state", [("complaint_seller_silent", "UPHELD"),
                                         ("complaint_appeal_upheld", "OVERTURNED")])
def test_a_complaint_recorded_before_it_archived_itself_gets_its_final_part_from_its_history(
        name: str, state: str) -> None:
    """What the sweeper writes for a complaint that closed before `archive-final-complaint`."""
    history = histories.read_file(HISTORIES / "complaints" / f"{name}.json")
    final = bundle.final_from_history(history, [])
    assert isinstance(final, bundle.FinalComplaint)
    assert final.dispute_id.startswith("cmp-ORD-rec-") and final.view.state == state and final.view.final
    assert final.policy.version == final.view.policy_version
    assert bundle.read_final(bundle.final_content(final)) == final
