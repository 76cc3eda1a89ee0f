"""``python -m embedder``: serve the embedding service with settings from ``EMBEDDER_*``."""

from __future__ import annotations

from embedder.app import create_app
from embedder.settings import EmbedderSettings
from services.serving.app import serve


def main() -> None:
    """Run the service until interrupted."""
    settings = EmbedderSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
