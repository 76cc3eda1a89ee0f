"""Service processes on one host: free loopback ports, start-and-wait, stop by pid.

Used by ``unifireward up``, the benchmarks and the tests, which all start real services on 127.0.0.1
and must stop exactly what they started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from services.tools.readiness import wait_until_ready


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_processes(procs: Sequence[subprocess.Popen[Any]], grace_s: float = 30.0) -> None:
    """Stop processes by pid: SIGTERM to all, then SIGKILL to those still running after ``grace_s`` (the
    default leaves a service its whole ``shutdown_timeout_s``, 25 s by default, to drain)."""
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def running(
    args: list[str], env: Mapping[str, str], url: str, log_path: Path | None = None, timeout_s: float = 180
) -> Iterator[subprocess.Popen[bytes]]:
    """A service process, ready at ``url`` (``/ready`` is 200), stopped by pid on the way out.

    Args:
        args: the command.
        env: variables added to this process's environment.
        url: the service's base URL.
        log_path: where its output goes (discarded when None).
        timeout_s: how long it may take to become ready.

    Raises:
        RuntimeError: the service did not become ready in ``timeout_s`` (with its log, when kept).
    """
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(log_path.open("wb")) if log_path is not None else subprocess.DEVNULL
        proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        try:
            if not wait_until_ready(url, timeout_s=timeout_s, process=proc):
                output = log_path.read_text() if log_path is not None else "(log discarded)"
                raise RuntimeError(f"{' '.join(args)} was not ready in {timeout_s} s:\n{output}")
            yield proc
        finally:
            stop_processes([proc])
