"""Print the reward service's OpenAPI document (``make openapi`` commits it to ``docs/``)."""

from __future__ import annotations

from reward_server.app import create_app
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings
from services.serving.app import render_openapi


def render() -> str:
    """The document, independent of the backend and of the environment."""
    return render_openapi(create_app(RewardSettings(_env_file=None, backend="fake"), backend=FakeJudge()))


if __name__ == "__main__":
    print(render(), end="")
