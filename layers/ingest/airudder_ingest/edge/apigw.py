"""API Gateway HTTP API (payload format 2.0): the request as received, and the answer."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airudder_ingest.base.errors import IngestError


@dataclass(frozen=True)
class WebhookRequest:
    body: bytes
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    route_path: str  # the route as in template.yaml, e.g. /webhooks/workflow/dialer
    raw_path: str
    path_params: Mapping[str, str] = field(default_factory=dict)
    request_id: str = ""
    source_ip: str = ""
    received_ms: int = 0
    # Why the body could not be read as sent (e.g. flagged base64 but not base64): the pipeline
    # quarantines it and answers 400 once the sender is authenticated. `body` then holds the text.
    body_error: str | None = None


def _body(event: Mapping[str, Any]) -> tuple[bytes, str | None]:
    """The body as received, and why it is unreadable (None when it is fine). Never raises: API Gateway
    sends strict base64 and valid UTF-8, but a hand-made event may not."""
    raw = event.get("body") or ""
    if isinstance(raw, bytes | bytearray):
        text = bytes(raw)
    elif isinstance(raw, str):
        text = raw.encode("utf-8", "surrogatepass")  # a lone surrogate stays invalid UTF-8 (400 later)
    else:
        return b"", f"body is not a string but {type(raw).__name__}"
    if not event.get("isBase64Encoded"):
        return text, None
    try:
        return base64.b64decode(text, validate=True), None
    except ValueError:  # binascii.Error
        return text, "body is flagged base64 but is not valid base64"


# complexity: no branches: each `or` is the default of a field API Gateway may leave out
def parse_event(event: Mapping[str, Any]) -> WebhookRequest:
    body, body_error = _body(event)
    context = event.get("requestContext") or {}
    route_key = event.get("routeKey") or context.get("routeKey") or ""
    route_path = route_key.split(" ", 1)[1] if " " in route_key else route_key
    return WebhookRequest(
        body=body,
        headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
        query=dict(event.get("queryStringParameters") or {}),
        route_path=route_path,
        raw_path=event.get("rawPath") or "",
        path_params=dict(event.get("pathParameters") or {}),
        request_id=context.get("requestId", ""),
        source_ip=(context.get("http") or {}).get("sourceIp", ""),
        received_ms=int(context.get("timeEpoch") or time.time() * 1000),
        body_error=body_error,
    )


def respond(status: int, body: Mapping[str, object], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
    }


def error_response(error: IngestError) -> dict[str, Any]:
    return respond(error.status, error.body())
