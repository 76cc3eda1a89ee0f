"""The CPU judge: frozen MiniLM sentence embeddings with small trained heads (see ``docs/judge.md``).

``features`` and ``heads`` need numpy only; ``encoder`` loads sentence-transformers; ``train`` needs
torch. Nothing heavy is imported by this package's ``__init__``.
"""
