"""The bare workflow behind a thin HTTP endpoint (FastAPI, run by uvicorn as the product's API
is), to show how much of the gap is HTTP. No auth, no database: the same two calls as `calls`.

    BENCH_TEMPORAL=127.0.0.1:7233 BENCH_TASK_QUEUE=bare uvicorn bench.bare.http:app
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict

from fastapi import FastAPI, Request
from temporalio.client import Client

from bench.bare import calls
from bench.bare.workflow import BareDispute


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.temporal = await Client.connect(os.environ["BENCH_TEMPORAL"])
    yield


app = FastAPI(lifespan=lifespan)


@app.post("/disputes", status_code=201)
async def open_dispute(body: BareDispute, request: Request) -> dict:
    return asdict(await calls.open_dispute(request.app.state.temporal, os.environ["BENCH_TASK_QUEUE"], body))


@app.post("/disputes/{dispute_id}/seller-agree-refund")
async def agree_refund(dispute_id: str, request: Request) -> dict:
    return asdict(await calls.agree_refund(request.app.state.temporal, dispute_id))


@app.get("/healthz")
async def health() -> dict:
    return {"status": "ok"}
