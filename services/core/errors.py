"""The system's typed errors: one hierarchy, no HTTP in it.

Services, the micro-batcher, the gatherer and the clients' callers raise these; only the HTTP layer
(:mod:`services.serving.http`) knows which status and envelope ``type`` each one is answered with
(TEI's map: overloaded 429, unhealthy 503, backend failure 502, validation 422).
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a service reports to its caller.

    Attributes:
        message: what went wrong, safe to show the caller.
        code: a short machine-readable code.
        param: the request field at fault, as a dotted path, when there is one.
    """

    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequestError(ServiceError):
    """The request is well-formed but asks for something the service cannot do."""

    code = "invalid_value"


class NotFoundError(ServiceError):
    """The request names a model (or another resource) this service does not have."""

    code = "model_not_found"


class LimitExceededError(ServiceError):
    """Too many items, or a body larger than the service accepts."""

    code = "request_too_large"


class AuthenticationError(ServiceError):
    """Missing or wrong API key."""

    code = "invalid_api_key"


class OverloadedError(ServiceError):
    """The service's queue is full; retry with backoff."""

    code = "queue_full"


class NotReadyError(ServiceError):
    """The backend is not loaded yet, or the service is shutting down."""

    code = "not_ready"


class BackendFailureError(ServiceError):
    """The model backend failed on the whole request."""

    code = "backend_failure"
