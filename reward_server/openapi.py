"""Print the reward service's OpenAPI document (``make openapi`` commits it to ``docs/``)."""

from __future__ import annotations

import json
from typing import Any

from reward_server.app import create_app
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings


def openapi_document() -> dict[str, Any]:
    """The document, independent of the backend and of the environment."""
    app = create_app(RewardSettings(_env_file=None, backend="fake"), backend=FakeJudge())
    return app.openapi()


def render() -> str:
    """The document as committed: sorted keys, two-space indent, final newline."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
