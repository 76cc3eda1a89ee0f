"""The committed OpenAPI document matches the code: regenerate it with `make openapi`."""

from __future__ import annotations

from pathlib import Path

from reward_server.openapi import render

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_reward_openapi_is_committed_and_current() -> None:
    committed = (DOCS / "openapi-reward.json").read_text()
    assert committed == render(), "docs/openapi-reward.json is stale: run `make openapi` and commit it"
