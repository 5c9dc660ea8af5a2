"""Errors a user of the Assignar client can meet, each with one message that says what to fix.

Messages never contain the client secret: they are shown in the Dagster UI, logs and emails.
"""

from __future__ import annotations


class AssignarError(Exception):
    """Base class: something went wrong talking to Assignar."""

    #: Short machine-readable kind, used for connection status and notifications.
    kind = "error"


class BadCredentialsError(AssignarError):
    kind = "bad_credentials"


class ApiAccessDisabledError(AssignarError):
    kind = "api_access_disabled"


class WrongRegionError(AssignarError):
    kind = "wrong_region"


class MaintenanceError(AssignarError):
    kind = "maintenance"


class RateLimitedError(AssignarError):
    kind = "rate_limited"


class UnavailableError(AssignarError):
    """Assignar kept failing (5xx, timeouts, dropped connections) for the whole retry budget."""

    kind = "unavailable"


class MalformedResponseError(AssignarError):
    kind = "malformed_response"


class InvalidRequestError(AssignarError):
    """Assignar refused the request itself (400): a bad filter, field or page size."""

    kind = "invalid_request"


class NotFoundError(AssignarError):
    kind = "not_found"
