"""Typed errors of the ingest path, and the one place that maps them to HTTP answers."""

from __future__ import annotations

import traceback


class IngestError(Exception):
    """An answer other than 200 that the pipeline gives on purpose."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, detail: object = None, quarantine_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        # Where the rejected body was kept, for inspection and replay.
        self.quarantine_id = quarantine_id

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "message": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        if self.quarantine_id is not None:
            body["quarantine_id"] = self.quarantine_id
        return body


class RouteNotFound(IngestError):
    status, code = 404, "not_found"


class Unauthorized(IngestError):
    status, code = 401, "unauthorized"


class PayloadTooLarge(IngestError):
    """The body was kept in quarantine, but not ingested."""

    status, code = 413, "payload_too_large"


class InvalidPayload(IngestError):
    """Not JSON, not a JSON object, or not decryptable; the body was kept in quarantine."""

    status, code = 400, "invalid_payload"


class Unprocessable(IngestError):
    """Authenticated, but our code failed on it (a bug, a value we cannot represent): the body was kept
    in quarantine with the reason, and the answer is the same on every retry, so AIRUDDER stops."""

    status, code = 400, "unprocessable_payload"


class StorageUnavailable(IngestError):
    """An AWS call failed: the sender should retry, and the retry will complete the event."""

    status, code = 503, "storage_unavailable"


class AuthUnavailable(IngestError):
    """The token secret could not be read: the sender should retry."""

    status, code = 503, "auth_unavailable"


def failure_site(exc: BaseException) -> str:
    """Where an exception was raised (module:function:line): enough to find the bug, without the
    exception's message (which may quote the body)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    frame = frames[-1]
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.name}:{frame.lineno}"
