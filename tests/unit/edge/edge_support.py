"""Building blocks of the webhook edge's unit tests: the edge wired to the in-process AWS of the `aws`
fixture (tests/unit/aws_support.py), and the API Gateway event a delivery arrives as."""

from __future__ import annotations

import json
import time
from typing import Any

from airudder_ingest.base.settings import IngestSettings
from airudder_ingest.edge.auth import TokenVerifier
from airudder_ingest.edge.webhook import WebhookEdge
from airudder_ingest.record.recorder import EventRecorder
from airudder_ingest.record.recording_queue import RecordingQueue
from airudder_ingest.storage.archive import ClaimChecks
from airudder_ingest.storage.store import EventStore

from ..aws_support import BUCKET, TABLE, TOKEN


def make_edge(aws: dict[str, Any], **overrides: Any) -> WebhookEdge:
    settings = IngestSettings.model_validate(
        {
            "EVENTS_TABLE": TABLE,
            "ARCHIVE_BUCKET": BUCKET,
            "WEBHOOK_TOKEN_SECRET": "unused",
            "RECORDINGS_QUEUE_URL": aws["queue_url"],
            **overrides,
        }
    )
    recorder = EventRecorder(
        settings,
        EventStore(TABLE, aws["dynamodb"]),
        ClaimChecks(BUCKET, aws["s3"]),
        RecordingQueue(aws["queue_url"], aws["sqs"]),
    )
    return WebhookEdge(
        settings, recorder, TokenVerifier("unused", fetch=lambda name, age, force: json.dumps({"current": TOKEN}))
    )


def api_event(
    body: Any,
    route: str = "/webhooks/workflow/dialer",
    token: str | None = TOKEN,
    raw_path: str | None = None,
    path_params: dict[str, str] | None = None,
    time_epoch: int | None = None,
) -> dict[str, Any]:
    """A delivery as API Gateway hands it over: a str body as it is, anything else as its JSON; `time_epoch`
    (ms) is when the gateway received it (now)."""
    return {
        "version": "2.0",
        "routeKey": f"POST {route}",
        "rawPath": raw_path or route,
        "queryStringParameters": {"token": token} if token else {},
        "headers": {"content-type": "application/json", "user-agent": "Airudder"},
        "pathParameters": path_params or {},
        "body": body if isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": {"requestId": "req-1", "timeEpoch": time_epoch or int(time.time() * 1000)},
    }
