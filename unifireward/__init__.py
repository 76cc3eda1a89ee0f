"""The ``unifireward`` command: the one composition root, which may import every component."""
