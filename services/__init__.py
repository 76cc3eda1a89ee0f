"""What every component shares, in layers (dependencies point inward; ``make lint`` enforces it):

- :mod:`services.core`: pure task logic (schemas, parsers, judge prompts, reward rules, redundancy
  math, batching and gathering primitives, the error hierarchy); standard library, numpy, pydantic.
- :mod:`services.contracts`: the wire contracts of both services and of OpenRLHF's remote protocol,
  and the typed clients; pydantic and httpx.
- :mod:`services.serving`: the service plumbing (app factory, middleware, error envelope, settings base);
  the only shared code that imports fastapi.
- :mod:`services.models`: loading the sentence encoder both the embedder and the CPU judge use.
- :mod:`services.data`: ESConv, the derived judge data and the judge metrics.
- :mod:`services.tools`: starting, waiting for and stopping service processes.

No module here imports a component (``reward_server``, ``embedder``, ``policy_trainer``).
"""
