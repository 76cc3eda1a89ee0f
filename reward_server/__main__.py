"""``python -m reward_server``: serve the reward service with settings from ``REWARD_*``."""

from __future__ import annotations

import uvicorn

from reward_server.app import create_app
from reward_server.settings import RewardSettings
from services.http import configure_logging


def main() -> None:
    """Run the service until interrupted."""
    settings = RewardSettings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level, log_config=None
    )


if __name__ == "__main__":
    main()
