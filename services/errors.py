"""The services' typed errors and their HTTP status (TEI's map: overloaded 429, unhealthy 503...).

Pure: no fastapi here, so clients and the trainer share the hierarchy. :mod:`services.http` turns
each into the one error envelope ``{"error": {"message", "type", "code", "param"}}``.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a service answers with the envelope.

    Attributes:
        status: the HTTP status.
        type: the envelope's ``type`` (OpenAI style: ``invalid_request_error``...).
        code: a short machine-readable code.
        param: the request field at fault, as a dotted path, when there is one.
    """

    status = 500
    type = "server_error"
    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequestError(ServiceError):
    """The request is well-formed JSON but asks for something the service cannot do."""

    status = 422
    type = "invalid_request_error"
    code = "invalid_value"


class NotFoundError(ServiceError):
    """The request names a model (or another resource) this service does not have."""

    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class RequestTooLargeError(ServiceError):
    """Too many items, or a body larger than the service accepts."""

    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class AuthenticationError(ServiceError):
    """Missing or wrong API key."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class OverloadedError(ServiceError):
    """The service's queue is full; retry with backoff."""

    status = 429
    type = "overloaded_error"
    code = "queue_full"


class ServiceUnavailableError(ServiceError):
    """The backend is not loaded yet, or the service is shutting down."""

    status = 503
    type = "unavailable_error"
    code = "not_ready"


class BackendFailureError(ServiceError):
    """The model backend failed on the whole request."""

    status = 502
    type = "backend_error"
    code = "backend_failure"
