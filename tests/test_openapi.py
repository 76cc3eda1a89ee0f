"""The committed OpenAPI documents match the code: regenerate them with `make openapi`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from embedder.openapi import render as render_embedder
from reward_server.openapi import render as render_reward

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize(
    ("name", "render"),
    [
        ("openapi-reward.json", render_reward),  # the reward service
        ("openapi-embedder.json", render_embedder),  # the embedding service
    ],
)
def test_openapi_is_committed_and_current(name: str, render: Callable[[], str]) -> None:
    committed = (DOCS / name).read_text()
    assert committed == render(), f"docs/{name} is stale: run `make openapi` and commit it"
