"""The request examples in docs/ are valid requests (users copy them first)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from services.contracts.reward import JudgeRequest, RewardsRequest

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("judge-request.json", JudgeRequest),  # make run's first curl
        ("rewards-request.json", RewardsRequest),  # a GRPO group with two identical samples
    ],
)
def test_examples_are_valid_requests(name: str, model: type[BaseModel]) -> None:
    model.model_validate(json.loads((EXAMPLES / name).read_text()))
