"""`disputeflow up` started in the background, as a shell starts `disputeflow up &` (with
SIGINT ignored), stops the whole stack cleanly on SIGINT and on SIGTERM alike; while up, each
process's metrics answer on the ports the settings give them."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

DISPUTEFLOW = str(Path(sys.executable).parent / "disputeflow")
# The shell runs `up` as a background job, so it starts with SIGINT ignored, then waits for it.
BACKGROUND = '"$0" up --data-dir "$1" --ui-port "$2" >"$3" 2>&1 & echo $! >"$4"; wait $!; echo $? >"$5"'


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout}s")


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _metrics(port: int) -> str | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_in_the_background_stops_everything_on_a_signal(signum: signal.Signals, tmp_path: Path) -> None:
    temporal, ui, api, worker_metrics, sdk_metrics = ports = _free_ports(5)
    env = os.environ | {
        "DISPUTEFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}", "DISPUTEFLOW_API_PORT": str(api),
        "DISPUTEFLOW_WORKER_METRICS_PORT": str(worker_metrics), "DISPUTEFLOW_WORKER_SDK_METRICS_PORT": str(sdk_metrics),
        "DISPUTEFLOW_DATABASE_URL": f"sqlite:///{tmp_path}/up.db", "DISPUTEFLOW_WORKER_SHUTDOWN_GRACE": "PT5S",
    }
    log, pid_file, rc_file = tmp_path / "up.log", tmp_path / "up.pid", tmp_path / "up.rc"
    shell = subprocess.Popen(["bash", "-c", BACKGROUND, DISPUTEFLOW, str(tmp_path / "data"), str(ui), str(log),
                              str(pid_file), str(rc_file)], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL)
    children: list[int] = []
    try:
        def up_and_healthy() -> bool:
            assert shell.poll() is None, log.read_text()
            return _healthy(api)

        _wait(up_and_healthy, 180, "the API to answer /healthz")
        # `up` waits for the API's port only: the worker, started beside it, opens its listeners
        # once it has loaded, which on a loaded machine may be after the API answers.
        worker = _wait(lambda: _metrics(worker_metrics), 60, "the worker's metrics")
        assert "disputeflow_calendar_coverage_days_left" in worker
        assert "temporal_" in _wait(lambda: _metrics(sdk_metrics), 60, "the SDK's metrics")
        api_metrics = httpx.get(f"http://127.0.0.1:{api}/metrics", timeout=5).text
        assert 'disputeflow_http_requests_total{method="GET",route="/healthz",status="200"}' in api_metrics
        up_pid = int(pid_file.read_text())
        children += [int(pid) for pid in re.findall(r"started .+ \(pid (\d+)\)", log.read_text())]
        assert len(children) == 4, log.read_text()

        os.kill(up_pid, signum)
        assert shell.wait(timeout=120) == 0
        output = log.read_text()
        assert rc_file.read_text().strip() == "0", output
        for name in ("api", "notification dispatcher", "worker", "temporal dev server"):
            assert f"[disputeflow] stopped {name}" in output, output
        assert "Traceback" not in output, output
        assert not any(_listening(port) for port in ports), output
        for child in children:
            assert not Path(f"/proc/{child}").exists() or "State:\tZ" in Path(f"/proc/{child}/status").read_text()
    finally:
        if shell.poll() is None:  # the test failed with the stack up: take it all down
            for pid in [int(pid_file.read_text()), *children] if pid_file.exists() else children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            shell.wait()
