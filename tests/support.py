"""What the service tests share: an app behind an in-process client, real processes on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from services.tools.processes import free_port, running, stop_processes

__all__ = ["error_of", "free_port", "in_process", "running", "stop_processes", "vllm_test_env"]


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


def vllm_test_env(root: Path) -> dict[str, str]:
    """vLLM on CPU in the test's process: one thread, no executor process, caches under ``root``, nothing sent."""
    return {
        "OMP_NUM_THREADS": "1",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_CACHE_ROOT": str(root / "vllm"),
        "HF_HOME": str(root / "hf"),
        "TRITON_CACHE_DIR": str(root / "triton"),
        "TORCHINDUCTOR_CACHE_DIR": str(root / "inductor"),
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
