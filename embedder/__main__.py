"""``python -m embedder``: serve the embedding service with settings from ``EMBEDDER_*``."""

from __future__ import annotations

import uvicorn

from embedder.app import create_app
from embedder.settings import EmbedderSettings
from services.http import configure_logging


def main() -> None:
    """Run the service until interrupted."""
    settings = EmbedderSettings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level, log_config=None
    )


if __name__ == "__main__":
    main()
