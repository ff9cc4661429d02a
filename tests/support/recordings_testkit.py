"""The recordings path on this machine, for tests and the benchmark: the local stack (template.yaml on
moto), a local recordings server, and a poller feeding RecordingsFunction from the recordings queue.

    with RecordingsLab() as lab:
        lab.send("call-1", lab.server.url("call-1", size=10_000_000))   # as the webhook edge does
        lab.drain()                                                      # Lambda's event source mapping
        lab.recording("call-1")["recording_status"]                      # "archived"
        lab.object_sha256("recordings/2024/05/01/call-1.wav")
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from airudder_ingest.record.recording_queue import RecordingQueue
from airudder_ingest.storage.archive import Envelope
from airudder_ingest.storage.store import EventRecord, EventStore
from tools.local_aws.sqs_poller import BatchOutcome, SqsPoller
from tools.local_aws.stack import TEST_TIMEOUT_SCALE, LocalStack
from tools.simulator.recordings_server import RecordingsServer

# Template parameters for local runs: the recordings server is on 127.0.0.1 (its port is added to the
# allow-list when it starts: other ports stay refused); no backoff between attempts; a read timeout
# short enough for a test to wait out.
LOCAL_PARAMETERS = {
    "RecordingAllowedHosts": "airudder.com,.airudder.com,127.0.0.1",
    "RecordingRetryBaseSeconds": "0",
    "RecordingReadTimeoutSeconds": "1",
}
DEFAULT_EVENT_TIME = "2024-05-01T10:00:00.000Z"


class RecordingsLab:
    def __init__(self, parameters: Mapping[str, Any] | None = None, **stack_options: Any) -> None:
        self.parameters = {**LOCAL_PARAMETERS, **(parameters or {})}
        self.stack_options = {"with_fault_proxy": False, "timeout_scale": TEST_TIMEOUT_SCALE, **stack_options}
        self.server = RecordingsServer()
        self.stack: LocalStack | None = None
        self._poller: SqsPoller | None = None
        self._store: EventStore | None = None

    def __enter__(self) -> RecordingsLab:
        self.server.start()
        if self.parameters["RecordingAllowedHosts"] == LOCAL_PARAMETERS["RecordingAllowedHosts"]:
            self.parameters["RecordingAllowedHosts"] += f",127.0.0.1:{self.server.port}"
        try:
            self.stack = LocalStack(parameters=self.parameters, **self.stack_options).start()
            self._poller = self.stack.sqs_poller("RecordingsFunction")
            self._store = EventStore(self.table, self.client("dynamodb"))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stack is not None:
            self.stack.stop()
        self.server.stop()

    # ------------------------------------------------------------------ the stack

    @property
    def running(self) -> LocalStack:
        if self.stack is None:
            raise RuntimeError("the lab is not running")
        return self.stack

    @property
    def poller(self) -> SqsPoller:
        if self._poller is None:
            raise RuntimeError("the lab is not running")
        return self._poller

    @property
    def store(self) -> EventStore:
        if self._store is None:
            raise RuntimeError("the lab is not running")
        return self._store

    def client(self, service: str) -> Any:
        return self.running.boto3_client(service)

    def resource(self, logical_id: str, attribute: str = "Ref") -> str:
        return str(self.running.resources[logical_id][attribute])

    @property
    def table(self) -> str:
        return self.resource("EventsTable")

    @property
    def bucket(self) -> str:
        return self.resource("ArchiveBucket")

    @property
    def queue_url(self) -> str:
        return self.resource("RecordingsQueue", "QueueUrl")

    @property
    def dlq_url(self) -> str:
        return self.resource("RecordingsDeadLetterQueue", "QueueUrl")

    # ------------------------------------------------------------------ driving it

    def send(
        self, call_id: str, url: str, *, event_time: str = DEFAULT_EVENT_TIME, event_id: str | None = None
    ) -> None:
        """Queue a recording link exactly as the webhook edge does (RecordingQueue.send)."""
        record = _call_event(event_id or f"ev-{call_id}", "CALL", call_id, url, event_time, call_id=call_id)
        RecordingQueue(self.queue_url, self.client("sqs")).send(record)

    def send_raw(self, body: str | dict[str, Any]) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=text)

    def drain(self, timeout: float = 60.0) -> list[BatchOutcome]:
        return self.poller.drain(timeout=timeout)

    # ------------------------------------------------------------------ looking

    def send_case(self, case_id: str, event_id: str, url: str, *, event_time: str = DEFAULT_EVENT_TIME) -> None:
        """Queue the link of a call notification that names its case but no call (as the webhook edge does)."""
        record = _call_event(event_id, "CASE", case_id, url, event_time, case_id=case_id)
        self.store.put_event(record, Envelope(path=record.route, body=b"{}").pack())
        RecordingQueue(self.queue_url, self.client("sqs")).send(record)

    def event_recording(self, event_id: str) -> dict[str, Any]:
        """The event item (recording_* attributes of a recording filed under its event)."""
        return self.store.find_event(event_id) or {}

    def recording(self, call_id: str) -> dict[str, Any]:
        """The call's state item (recording_* attributes and, once an event came, the rest)."""
        return self.store.get_state("CALL", call_id) or {}

    def object_sha256(self, key: str) -> tuple[str, int]:
        """SHA-256 and size of an archived object, read in chunks."""
        body = self.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"]
        digest, size = hashlib.sha256(), 0
        for chunk in body.iter_chunks(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    def head(self, key: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.client("s3").head_object(Bucket=self.bucket, Key=key)
        return answer

    def versions(self, prefix: str) -> list[dict[str, Any]]:
        """Every version of every object under `prefix` (the bucket is versioned)."""
        answer = self.client("s3").list_object_versions(Bucket=self.bucket, Prefix=prefix)
        return list(answer.get("Versions", []))

    def clear(self, queue_url: str) -> int:
        """Delete every visible message of a queue (PurgeQueue is allowed once a minute only)."""
        sqs, removed = self.client("sqs"), 0
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return removed
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
            )
            removed += len(messages)

    def queue_counts(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) messages of a queue."""
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _call_event(
    event_id: str,
    kind: str,
    entity_id: str,
    url: str,
    event_time: str,
    *,
    call_id: str | None = None,
    case_id: str | None = None,
) -> EventRecord:
    """A workflow call notification's event as the recorder builds it, with its recording link."""
    return EventRecord(
        event_id=event_id,
        webhook_type="workflow.call",
        route="/webhooks/workflow/call",
        source="webhook",
        received_at=event_time,
        event_time=event_time,
        time_source="payload",
        entity_kind=kind,
        entity_id=entity_id,
        call_id=call_id,
        case_id=case_id,
        recording_url=url,
    )
