"""Requests to copy a recording, sent to the recordings queue (consumed by the recordings function)."""

from __future__ import annotations

import json
from typing import Any

from airudder_ingest.models.record import EventRecord
from airudder_ingest.storage.store import event_sort_key


def recording_request(rec: EventRecord) -> dict[str, Any]:
    return {
        "url": rec.recording_url,
        "call_id": rec.call_id or (rec.entity_id if rec.entity_kind == "CALL" else None),
        "entity": rec.entity,
        "event_id": rec.event_id,
        "event_time": rec.event_time,
        # Where the copier files a recording that has no call id: the event item (entity, event_sk).
        "event_sk": event_sort_key(rec.event_time, rec.event_id, rec.timed),
        "webhook_type": rec.webhook_type,
        "source": rec.source,
        "request_id": rec.request_id,  # the delivery's correlation_id, for the consumer's log lines
    }


class RecordingQueue:
    def __init__(self, queue_url: str, sqs: Any) -> None:
        self.queue_url = queue_url
        self._sqs = sqs

    def send(self, rec: EventRecord) -> None:
        self._sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(recording_request(rec)))
