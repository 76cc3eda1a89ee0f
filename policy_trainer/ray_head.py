"""A local Ray head for the tests: loopback only, its own ports and temp dir, stopped by pid.

``ray start --head --block`` runs in the foreground as a child of the test, in a process group of its own; GCS,
raylet, dashboard and the workers are its descendants. On the way out it gets SIGTERM (it then drains
and stops what it started), and whatever of its process tree is still alive after a grace period is
killed by pid. ``ray stop`` is never used: it stops every Ray of the user on the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from services.tools.processes import free_port

#: The options that take a port; each gets a free loopback port, so another Ray on the host is left alone.
PORT_OPTIONS = (
    "--port",
    "--dashboard-port",
    "--ray-client-server-port",
    "--node-manager-port",
    "--object-manager-port",
    "--metrics-export-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
)


@dataclass(frozen=True)
class RayHead:
    """A running head: its job server's address, its process, and where it writes."""

    address: str
    gcs_address: str
    process: subprocess.Popen[bytes]
    temp_dir: Path
    log_path: Path


def _job_server_up(address: str) -> bool:
    try:
        return httpx.get(f"{address}/api/jobs/", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _stop(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the head, then SIGKILL what is left of its process tree (job drivers leave its process group)."""
    tree: list[psutil.Process] = []
    with contextlib.suppress(psutil.NoSuchProcess):
        tree = psutil.Process(process.pid).children(recursive=True)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    _, alive = psutil.wait_procs(tree, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(alive, timeout=5)


@contextlib.contextmanager
def ray_head(num_cpus: int = 2, num_gpus: int = 0, timeout_s: float = 90.0, grace_s: float = 40.0) -> Iterator[RayHead]:
    """A Ray head on 127.0.0.1 with a dashboard (the job server), ready to take jobs.

    Raises:
        RuntimeError: it did not take jobs within ``timeout_s`` (with its log).
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay under 108 bytes
    log_path = temp_dir / "head.log"
    ports = {option: str(free_port()) for option in PORT_OPTIONS}
    args = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        "--include-dashboard=true",
        f"--num-cpus={num_cpus}",
        f"--num-gpus={num_gpus}",  # logical: OpenRLHF's placement groups ask for GPUs (the CPU mode)
        "--min-worker-port=0",  # 0: workers bind random free ports
        "--max-worker-port=0",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
        *(f"{option}={port}" for option, port in ports.items()),
    ]
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    address = f"http://127.0.0.1:{ports['--dashboard-port']}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while not _job_server_up(address):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not take jobs in {timeout_s} s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield RayHead(address, f"127.0.0.1:{ports['--port']}", process, temp_dir, log_path)
    finally:
        _stop(process, grace_s)
        shutil.rmtree(temp_dir, ignore_errors=True)
