"""The request id of the work in progress, shared by the services' logs and their clients.

A service sets it from the ``X-Request-Id`` header of each request (or makes one); clients send it
on every call they make on that request's behalf, so one id follows a sample from the trainer through
the reward service into the embedder's logs.
"""

from __future__ import annotations

import contextvars

REQUEST_ID_HEADER = "X-Request-Id"
#: "-" when no request is in progress.
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
