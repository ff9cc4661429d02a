"""API Gateway HTTP API (payload format 2.0): the request as received, and the answer."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import IngestError


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


def parse_event(event: Mapping[str, Any]) -> WebhookRequest:
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
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
    )


def respond(status: int, body: Mapping[str, object], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
    }


def error_response(error: IngestError) -> dict[str, Any]:
    return respond(error.status, error.body())
