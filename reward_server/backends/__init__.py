"""Judge backends behind the :class:`~reward_server.backends.base.JudgeBackend` protocol."""
