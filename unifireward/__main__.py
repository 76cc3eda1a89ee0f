"""``python -m unifireward``: the ``unifireward`` command."""

from __future__ import annotations

from unifireward.cli import app

if __name__ == "__main__":
    app()
