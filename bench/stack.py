"""What the benchmarks measure, started as real processes: a Temporal dev server, the product's
worker and API (as `disputeflow up` starts them), or any other Python process; each one's
CPU time read through psutil, and optionally profiled with py-spy."""

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from config.settings import Settings
from temporalio.client import Client

from config.temporal import dev_server_search_attribute_flags
from database import make_engine, migrate, new_schema_name, throwaway_schema
from devstack.namespace_setup import prepare_namespace
from devstack.stack import temporal_binary, wait_for_port
from security.encryption import write_development_keyring

PROJECT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.popen.pid).cpu_times()
        return times.user + times.system

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise SystemExit(f"{self.name} exited with {self.popen.returncode}; its log:\n{self.log.read_text()[-3000:]}")


@dataclass
class Processes:
    """The processes of one benchmark run, their logs in `directory`; stopped (SIGTERM, then
    SIGKILL) in reverse order by `stop`. With `profile`, each Python process is recorded by py-spy."""

    directory: Path
    profile: Path | None = None
    started: list[Process] = field(default_factory=list)
    _profilers: list[subprocess.Popen] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Process:
        log = self.directory / f"{name}.log"
        popen = subprocess.Popen(args, cwd=PROJECT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
        process = Process(name, popen, log)
        self.started.append(process)
        return process

    def python(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Process:
        process = self.start(name, [sys.executable, *args], env)
        if self.profile is not None:
            self.profile.mkdir(parents=True, exist_ok=True)
            # py-spy writes its file when the profiled process ends (the stop below).
            self._profilers.append(subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(process.popen.pid),
                 "--format", "speedscope", "--output", str(self.profile / f"{name}.speedscope.json"),
                 "--rate", "50", "--nonblocking"],
                stdout=(self.directory / f"py-spy-{name}.log").open("wb"), stderr=subprocess.STDOUT))
        return process

    def stop(self) -> None:
        for process in reversed(self.started):
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for process in reversed(self.started):
            try:
                process.popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
        for profiler in self._profilers:
            try:
                profiler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                profiler.kill()
                profiler.wait()


@contextmanager
def processes(profile: Path | None = None, keep_logs: Path | None = None) -> Iterator[Processes]:
    with tempfile.TemporaryDirectory(prefix="disputeflow-bench-") as directory:
        running = Processes(keep_logs or Path(directory), profile)
        try:
            yield running
        finally:
            running.stop()


def start_temporal_servers(running: Processes, *names: str) -> list[tuple[str, Process]]:
    """`start_temporal` for each name, at once."""
    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(lambda name: start_temporal(running, name), names))


def start_temporal(running: Processes, name: str) -> tuple[str, Process]:
    """A fresh in-memory Temporal dev server with the search attributes registered; its address."""
    port = free_port()
    server = running.start(name, [
        temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--headless",
        "--log-level", "error", *dev_server_search_attribute_flags(),
    ])
    wait_for_port("127.0.0.1", port, server.popen)
    address = f"127.0.0.1:{port}"

    async def prepare() -> None:
        deadline = time.monotonic() + 60
        while True:  # the port opens before the frontend is healthy
            try:
                client = await Client.connect(address)
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)
        # `disputeflow up`'s retention, so both sides' namespaces are configured alike.
        await prepare_namespace(client, Settings())

    asyncio.run(prepare())
    return address, server


@dataclass
class BothSides:
    """A run's processes: each side's Temporal server, the bare worker, the product's worker and API."""

    product_temporal: str
    product_server: Process
    bare_temporal: str
    bare_server: Process
    bare_queue: str
    bare_worker: Process
    api_url: str
    worker: Process
    api: Process


def start_both_sides(running: Processes, database: str, product_url: str, bare_url: tuple[str, str | None],
                     home: Path) -> BothSides:
    """A fresh Temporal server per side, the bare worker (`bench.bare.worker`) on `bare_url`'s database
    (and schema), the product's worker and API on `product_url`."""
    run = uuid.uuid4().hex[:6]
    (product_temporal, product_server), (bare_temporal, bare_server) = start_temporal_servers(
        running, f"temporal-product-{database}", f"temporal-bare-{database}")
    bare_queue = f"bare-{run}"
    bare_database, bare_schema = bare_url
    bare_worker = running.python("bare-worker", ["-m", "bench.bare.worker", "--temporal", bare_temporal,
                                                 "--task-queue", bare_queue, "--database", bare_database,
                                                 *(["--schema", bare_schema] if bare_schema else [])])
    env = product_env(home, product_temporal, product_url) | {"DISPUTEFLOW_TASK_QUEUE": f"bench-{run}"}
    api_url, worker, api = start_product(running, env)
    return BothSides(product_temporal, product_server, bare_temporal, bare_server, bare_queue, bare_worker,
                     api_url, worker, api)


def product_env(home: Path, temporal_address: str, database_url: str) -> dict[str, str]:
    """The environment of the product's processes: as `disputeflow up` runs them (payload
    encryption on with a development key), on this run's Temporal server and database, with
    the worker's metrics listeners off (ports 0) so it never clashes with another stack."""
    write_development_keyring(home / ".data" / "payload-keys.json")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTEFLOW_")}
    return inherited | {
        "DISPUTEFLOW_HOME": str(home),
        "DISPUTEFLOW_DATABASE_URL": database_url,
        "DISPUTEFLOW_TEMPORAL_ADDRESS": temporal_address,
        "DISPUTEFLOW_WORKER_METRICS_PORT": "0",
        "DISPUTEFLOW_WORKER_SDK_METRICS_PORT": "0",
        "DISPUTEFLOW_LOG_LEVEL": "WARNING",
    }


def start_product(running: Processes, env: dict[str, str]) -> tuple[str, Process, Process]:
    """Migrate (as `disputeflow migrate`), then the worker and the API (uvicorn, as `disputeflow up`);
    the API's base URL once it is healthy."""
    engine = make_engine(env["DISPUTEFLOW_DATABASE_URL"])
    try:
        migrate(engine)
    finally:
        engine.dispose()
    worker = running.python("product-worker", ["-m", "worker"], env)
    port = free_port()
    api = running.python("product-api", ["-m", "uvicorn", "api.main:app", "--no-access-log", "--log-level",
                                         "warning", "--host", "127.0.0.1", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base + "/healthz", [worker, api])
    return base, worker, api


def wait_healthy(url: str, watched: list[Process], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in watched:
            process.check_alive()
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer 200 within {timeout:.0f}s")


def options(description: str) -> argparse.ArgumentParser:
    """The options every benchmark of the stack takes; each adds its own."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL", help="also on PostgreSQL, each side in a scratch schema, "
                        "e.g. postgresql://postgres@127.0.0.1/test")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="record py-spy profiles (speedscope) of every Python process under test into DIR")
    return parser


# (database label, the product's database URL, the bare side's URL and schema, the run's processes, a home)
RunOn = Callable[[str, str, tuple[str, str | None], Processes, Path], None]


def on_each_database(args: argparse.Namespace, name: str, run_on: RunOn) -> None:
    """`run_on` on SQLite files, then (with `--postgres`) on scratch schemas dropped afterwards;
    each with processes of its own, profiled with `--profile`."""
    print(f"machine: {os.cpu_count()} cores; PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}")
    with tempfile.TemporaryDirectory(prefix="disputeflow-bench-home-") as home:
        with processes(args.profile and args.profile / "sqlite") as running:
            run_on("SQLite", f"sqlite:///{home}/product.db", (f"sqlite:///{home}/bare.db", None), running,
                   Path(home) / "sqlite")
        if not args.postgres:
            return
        with ExitStack() as schemas, processes(args.profile and args.profile / "postgres") as running:
            product_schema, bare_schema = new_schema_name(f"bench_{name}"), new_schema_name("bench_bare")
            schemas.enter_context(throwaway_schema(args.postgres, product_schema))
            schemas.enter_context(throwaway_schema(args.postgres, bare_schema))
            separator = "&" if "?" in args.postgres else "?"
            run_on("PostgreSQL", f"{args.postgres}{separator}options=-csearch_path%3D{product_schema}",
                   (args.postgres, bare_schema), running, Path(home) / "postgres")
