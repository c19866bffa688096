"""A worker that hangs in the middle of a settlement, for tests/test_worker_crash.py to kill.

    python tests/crashing_worker.py ADDRESS NAMESPACE TASK_QUEUE DATABASE_URL DISPUTE_ID MARKER

It runs the real workflows and activities on TASK_QUEUE, but its ledger, once it has
committed the dispute's settlement batch (the one holding f"{DISPUTE_ID}-release"), writes
the batch's transfer ids to MARKER and blocks for ever: the activity never reports back,
as if the process had died right after the COMMIT.
"""

import asyncio
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project root, when run as a script

from config.temporal import connect  # noqa: E402
from database import make_engine  # noqa: E402
from ledger import Ledger, TransferRequest  # noqa: E402
from worker import build_worker  # noqa: E402


class LedgerThatHangsAfterSettling(Ledger):
    def __init__(self, engine, dispute_id: str, marker: Path):  # noqa: ANN001
        super().__init__(engine)
        self._release_id = f"{dispute_id}-release"
        self._marker = marker

    def create_transfers(self, requests: list[TransferRequest]):  # noqa: ANN201
        results = super().create_transfers(requests)
        if any(request.id == self._release_id for request in requests):
            written = self._marker.with_suffix(".tmp")
            written.write_text(json.dumps([request.id for request in requests]))
            os.replace(written, self._marker)  # the test never reads half a marker
            threading.Event().wait()  # committed; never answer
        return results


async def main(address: str, namespace: str, task_queue: str, database_url: str, dispute_id: str,
               marker: str) -> None:
    engine = make_engine(database_url)
    client = await connect(address, namespace)
    ledger = LedgerThatHangsAfterSettling(engine, dispute_id, Path(marker))
    executor = ThreadPoolExecutor(max_workers=4)
    worker = build_worker(client, task_queue, engine, executor, ledger=ledger)
    await worker.run()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
