"""``python -m reward_server``: serve the reward service with settings from ``REWARD_*``."""

from __future__ import annotations

from reward_server.app import create_app
from reward_server.settings import RewardSettings
from services.serving.app import serve


def main() -> None:
    """Run the service until interrupted."""
    settings = RewardSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
