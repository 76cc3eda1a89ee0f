"""Wait for a service's ``/ready`` (scripts, tests and the trainer start services and wait on them)."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_until_ready(
    base_url: str, timeout_s: float = 120.0, interval_s: float = 0.5, process: subprocess.Popen[bytes] | None = None
) -> bool:
    """Poll ``{base_url}/ready`` until it answers 200.

    Args:
        base_url: the service, e.g. ``http://127.0.0.1:8000``.
        timeout_s: how long to wait in all.
        interval_s: pause between polls.
        process: the service's process, if this caller started it: waiting stops when it exits.

    Returns:
        True when the service is ready, False when the time ran out or the process exited.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(interval_s)
    return False
