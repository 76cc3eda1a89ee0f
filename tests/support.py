"""What the service tests share: an app behind an in-process client, real processes on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from services.readiness import wait_until_ready


@contextlib.asynccontextmanager
async def in_process(
    app: FastAPI, base_url: str = "http://t", load_timeout_s: float = 120.0
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, behind an in-process client; waits until the backend loaded."""
    transport = httpx.ASGITransport(app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        deadline = time.monotonic() + load_timeout_s
        while app.state.load_status == "loading" and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        yield client


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The envelope's inside, after checking the envelope has exactly its four fields."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "code", "param"}
    return dict(body["error"])


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """Stop a process this test started, by its pid: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def running(
    args: list[str], env: Mapping[str, str], url: str, log_path: Path, timeout_s: float = 120
) -> Iterator[subprocess.Popen[bytes]]:
    """A service process, ready at ``url`` (``/ready`` is 200), stopped by pid on the way out.

    Raises:
        RuntimeError: the service did not become ready in ``timeout_s`` (with its log).
    """
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        try:
            if not wait_until_ready(url, timeout_s=timeout_s, process=proc):
                raise RuntimeError(f"{' '.join(args)} was not ready in {timeout_s} s:\n{log_path.read_text()}")
            yield proc
        finally:
            stop(proc)
