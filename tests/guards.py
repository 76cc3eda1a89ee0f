"""Helpers shared by the tests."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def finishes_within(seconds: int) -> Iterator[None]:
    """Turn a hang (catastrophic regex backtracking) into a failure instead of a stuck test run."""

    def _fail(signum: int, frame: object) -> None:
        raise TimeoutError(f"did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, _fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


#: ESConv beside the checkout (the project reads it, never copies it).
ESCONV_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv"
needs_esconv = pytest.mark.skipif(not ESCONV_DIR.exists(), reason="ESConv is not available at ../shared/data/esconv")
