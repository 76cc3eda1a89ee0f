"""Print the embedding service's OpenAPI document (``make openapi`` commits it to ``docs/``)."""

from __future__ import annotations

from embedder.app import create_app
from embedder.backends.fake import FakeEmbedder
from embedder.settings import EmbedderSettings
from services.serving.app import render_openapi


def render() -> str:
    """The document, independent of the backend and of the environment."""
    return render_openapi(create_app(EmbedderSettings(_env_file=None, backend="fake"), backend=FakeEmbedder()))


if __name__ == "__main__":
    print(render(), end="")
