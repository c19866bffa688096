"""Replays an auditor started from the console: one dispute per API call, so the page can show
how far it got. Held by the API process that runs them (a restart forgets them; the report
of a replay is also what `disputeflow audit replay` prints)."""

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp

from console.api import Refused, console_api


@dataclass
class ReplayJob:
    owner: str
    dispute_ids: list[str]
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    done: bool = False

    @property
    def counts(self) -> dict[str, int]:
        counts = {"replayed": 0, "nondeterministic": 0, "failed": 0, "not_found": 0}
        for outcome in self.outcomes:
            counts[outcome["status"]] += 1
        return counts


class ReplayJobs:
    def __init__(self) -> None:
        self._jobs: dict[str, ReplayJob] = {}
        self._tasks: set[asyncio.Task] = set()

    def start(self, app: ASGIApp, token: str, request_id: str, owner: str, dispute_ids: list[str]) -> str:
        job_id = secrets.token_hex(8)
        job = self._jobs[job_id] = ReplayJob(owner=owner, dispute_ids=dispute_ids)
        task = asyncio.create_task(_run(app, token, request_id, job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job_id

    def get(self, job_id: str, owner: str) -> ReplayJob | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None


async def _run(app: ASGIApp, token: str, request_id: str, job: ReplayJob) -> None:
    try:
        async with console_api(app, token, request_id) as api:
            for dispute_id in job.dispute_ids:
                report = await api.post("/audit/replay", {"dispute_ids": [dispute_id]})
                job.outcomes += report["outcomes"]
    except Refused as refused:
        job.error = str(refused)
    finally:
        job.done = True
