"""Fan-out: every newly stored event, read from the table's stream, published to an EventBridge bus.

    stream batch -> event items newly inserted (never state, quarantine or sync items; never a
    duplicate: a redelivery writes no event item) -> one PutEvents entry each (the event's facts, never
    the body) -> PutEvents in chunks of <= 10 entries and <= 256 KB -> failed entries retried

What happens when publishing fails (README, "Fan-out"):

* Entries EventBridge refuses one by one (``FailedEntryCount``) are retried here with bounded backoff;
  the ones still refused are parked, whole, on the on-failure queue (alarmed) and the batch moves on:
  a poisoned entry never blocks its shard, and nothing is lost (the queue keeps what to publish).
* A PutEvents call that fails as a whole (EventBridge unreachable, 5xx after the SDK's retries) is retried
  here too; then the handler reports the first record not yet published (ReportBatchItemFailures), so
  Lambda retries from that record on, and only from there: records before it were published and are
  checkpointed. Lambda's bounded retries (with bisect) end on the mapping's on-failure destination, the
  same queue, with the shard and sequence numbers of the batch.

EventBridge delivers at least once, and an entry published just before a failure can be published again
by the retry: consumers dedupe on ``detail.event_id``.
"""

from __future__ import annotations

import json
import os
import random
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from airudder_ingest.base import aws
from airudder_ingest.storage.archive import RAW_PREFIX, event_body, partition_prefix, unpack_envelope
from airudder_ingest.storage.store import inserted_image, item_from_stream

logger = Logger(child=True)
metrics = Metrics()

SOURCE = "airudder.ingest"
SCHEMA_VERSION = 1
# PutEvents limits: 10 entries and 256 KB per call (an entry's size as EventBridge counts it: entry_size).
MAX_ENTRIES_PER_CALL = 10
MAX_BYTES_PER_CALL = 256 * 1024
PHONE_MODES = ("masked", "included")
# Identifiers of the event item published as they are (phone handled apart).
ID_FIELDS = ("call_id", "case_id", "task_id", "workflow_id", "nodetask_id")
# Result labels, read from the stored body (top level, or the dialer push's pds.body) under these names
# (AIRUDDER's spellings -> ours). Labels only: no names, numbers or free text (ner_slots, answers) leave.
RESULT_FIELDS = {
    "intention": "intention",
    "event_label": "event_label",
    "hangup_reason": "hangup_reason",
    "hangupReason": "hangup_reason",
    "verification_result": "verification_result",
    "session_end_reason": "session_end_reason",
}
MAX_LABEL_CHARS = 100


class PublishUnavailable(Exception):
    """PutEvents failed as a whole after the retries: Lambda retries the rest of the batch."""


@dataclass(frozen=True)
class FanoutSettings:
    event_bus: str
    phone_mode: str = "masked"
    failure_queue_url: str = ""
    archive_bucket: str = ""
    source: str = SOURCE
    max_attempts: int = 3  # PutEvents attempts per entry inside one invocation (the SDK retries within each)
    backoff_seconds: float = 0.2

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FanoutSettings:
        env = os.environ if environ is None else environ
        mode = env.get("FANOUT_PHONE_NUMBERS", "masked").strip().lower() or "masked"
        if mode not in PHONE_MODES:
            raise ValueError(f"FANOUT_PHONE_NUMBERS must be one of {', '.join(PHONE_MODES)}, not {mode!r}")
        return cls(
            event_bus=env["FANOUT_EVENT_BUS"],
            phone_mode=mode,
            failure_queue_url=env.get("FANOUT_FAILURE_QUEUE_URL", ""),
            archive_bucket=env.get("ARCHIVE_BUCKET", ""),
            source=env.get("FANOUT_SOURCE", SOURCE) or SOURCE,
            max_attempts=max(1, int(env.get("FANOUT_MAX_ATTEMPTS", "3"))),
            backoff_seconds=float(env.get("FANOUT_BACKOFF_SECONDS", "0.2")),
        )


# ---------------------------------------------------------------------------------------- stream -> detail


def new_event_image(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored event item a stream record inserts, deserialized; None for anything else (a state,
    quarantine or sync item, a MODIFY or REMOVE). An event item is written once (conditional put), so
    its INSERT is the one moment it is new."""
    image = inserted_image(record, ("event",))
    return item_from_stream(image) if image and "event_id" in image else None


def mask_phone(phone: str) -> str:
    """All but the last four digits hidden; the leading + kept (so the shape still says E.164)."""
    digits = phone[1:] if phone.startswith("+") else phone
    shown = digits[-4:] if len(digits) > 4 else ""
    return ("+" if phone.startswith("+") else "") + "*" * (len(digits) - len(shown)) + shown


def event_detail(
    item: Mapping[str, Any], *, phone_mode: str = "masked", archive_bucket: str = "", stored_at: str | None = None
) -> dict[str, Any]:
    """What subscribers get: the event's facts, never its body (schema: schemas/ingest-event.schema.json)."""
    webhook_type = str(item["webhook_type"])
    detail: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": str(item["event_id"]),
        "webhook_type": webhook_type,
        "family": webhook_type.split(".", 1)[0],
        "source": str(item.get("source") or "webhook"),
        "status": _text(item.get("status")),
        "event_time": str(item["event_time"]),
        "time_source": _text(item.get("time_source")),
        "received_at": _text(item.get("received_at")),
        "stored_at": stored_at,
        "entity": {"kind": _text(item.get("entity_kind")), "id": _text(item.get("entity_id"))},
        "ids": {name: _text(item.get(name)) for name in ID_FIELDS if item.get(name) not in (None, "")},
        "phone": None,
        "has_recording": bool(item.get("recording_url")),
        "event_key": {"pk": str(item["pk"]), "sk": str(item["sk"])},
        "archive": None,
    }
    labels = result_labels(_event_text(item))
    if labels:
        detail["result"] = labels
    phone = item.get("phone")
    if phone:
        detail["phone"] = str(phone) if phone_mode == "included" else mask_phone(str(phone))
    detail["archive"] = {
        "bucket": archive_bucket or None,
        "prefix": partition_prefix(RAW_PREFIX, webhook_type, str(item["event_time"])[:10]),
    }
    if item.get("request_id"):
        detail["request_id"] = str(item["request_id"])
    return detail


def _event_text(item: Mapping[str, Any]) -> str | None:
    """The JSON text the event was read from, from its packed envelope (None when only a claim check is
    on the item, or the envelope cannot be read: the labels are then left out)."""
    blob = item.get("envelope")
    if not isinstance(blob, bytes | bytearray):
        return None
    try:
        return event_body(unpack_envelope(bytes(blob)))
    except (ValueError, zlib.error):
        return None


def result_labels(data: Any) -> dict[str, Any]:
    """The event's result labels (intention grade, event labels, hangup reason, verification result) from
    its stored body, as text; {} when the body is not inline (over MAX_INLINE_DATA_BYTES) or has none."""
    labels: dict[str, Any] = {}
    for place in _label_places(data):
        for name, ours in RESULT_FIELDS.items():
            value = place.get(name)
            if ours not in labels and value not in (None, ""):
                label = _label(value)
                if label:
                    labels[ours] = label
    return labels


def _label_places(data: Any) -> list[dict[str, Any]]:
    """Where a stored body keeps its result labels: its top level, and the dialer push's pds.body."""
    if not isinstance(data, str):
        return []
    try:
        body = json.loads(data)
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    pds = body.get("pds")
    if isinstance(pds, dict) and isinstance(pds.get("body"), dict):
        return [body, pds["body"]]  # the dialer's push: its labels are one level down
    return [body]


def _label(value: Any) -> str | dict[str, str] | None:
    """A label as published: text cut to MAX_LABEL_CHARS, or a flat object of at most 20 such texts."""
    if isinstance(value, dict):
        return {str(k)[:MAX_LABEL_CHARS]: str(v)[:MAX_LABEL_CHARS] for k, v in list(value.items())[:20]}
    if isinstance(value, str | int | float | bool):
        return str(value)[:MAX_LABEL_CHARS]
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------- entries, chunks


@dataclass
class Pending:
    """One entry to publish and the stream record it comes from."""

    sequence_number: str
    event_id: str
    entry: dict[str, Any]
    error: str | None = None
    request_id: str | None = None  # the delivery's API request id: correlation_id of its log lines

    def log_keys(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "correlation_id": self.request_id, "detail_type": self.entry["DetailType"]}


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge counts it against the 256 KB of a PutEvents call."""
    size = 14 if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(name) or "").encode())
    size += sum(len(str(r).encode()) for r in entry.get("Resources") or [])
    return size


def chunks(pending: Sequence[Pending]) -> Iterable[list[Pending]]:
    """Consecutive chunks of at most 10 entries and 256 KB (stream order kept)."""
    chunk: list[Pending] = []
    size = 0
    for item in pending:
        item_size = entry_size(item.entry)
        if chunk and (len(chunk) == MAX_ENTRIES_PER_CALL or size + item_size > MAX_BYTES_PER_CALL):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk


@dataclass
class BatchReport:
    records: int = 0
    events: int = 0
    published: list[str] = field(default_factory=list)  # event ids
    parked: list[str] = field(default_factory=list)  # event ids sent to the on-failure queue
    first_unpublished: str | None = None  # sequence number Lambda retries from


# ---------------------------------------------------------------------------------------- the publisher


class EventPublisher:
    def __init__(
        self,
        settings: FanoutSettings,
        events: Any,
        sqs: Any | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._events = events
        self._sqs = sqs
        self._sleep = sleep

    @classmethod
    def from_env(cls) -> EventPublisher:
        settings = FanoutSettings.from_env()
        return cls(settings, aws.client("events"), aws.client("sqs") if settings.failure_queue_url else None)

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A DynamoDB stream batch in; ReportBatchItemFailures answer out."""
        report = self.publish_records(event.get("Records") or [])
        if report.first_unpublished is None:
            return {"batchItemFailures": []}
        return {"batchItemFailures": [{"itemIdentifier": report.first_unpublished}]}

    def pending_from(self, records: Sequence[Mapping[str, Any]]) -> list[Pending]:
        pending: list[Pending] = []
        seen: set[str] = set()
        for record in records:
            item = new_event_image(record)
            if item is None:
                continue
            event_id = str(item["event_id"])
            if event_id in seen:  # the same insert twice in one batch: publish it once
                continue
            seen.add(event_id)
            stream = record.get("dynamodb") or {}
            detail = event_detail(
                item,
                phone_mode=self.settings.phone_mode,
                archive_bucket=self.settings.archive_bucket,
                stored_at=_epoch_iso(stream.get("ApproximateCreationDateTime")),
            )
            entry = {
                "Source": self.settings.source,
                "DetailType": detail["webhook_type"],
                "Detail": json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
                "EventBusName": self.settings.event_bus,
            }
            request_id = str(item["request_id"]) if item.get("request_id") else None
            pending.append(Pending(str(stream.get("SequenceNumber") or ""), event_id, entry, request_id=request_id))
        return pending

    def publish_records(self, records: Sequence[Mapping[str, Any]]) -> BatchReport:
        report = BatchReport(records=len(records))
        pending = self.pending_from(records)
        report.events = len(pending)
        for chunk in chunks(pending):
            try:
                self._publish_chunk(chunk, report)
            except PublishUnavailable as exc:
                report.first_unpublished = chunk[0].sequence_number
                logger.warning(
                    "publishing stopped; Lambda retries the batch from the first unpublished record",
                    extra={"error": str(exc), "published": len(report.published), "events": report.events},
                )
                break
        if report.published:
            metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=len(report.published))
        if report.parked:
            metrics.add_metric(name="EventsPublishFailed", unit=MetricUnit.Count, value=len(report.parked))
        return report

    def _publish_chunk(self, chunk: list[Pending], report: BatchReport) -> None:
        """Publish, retrying the refused entries; park the ones still refused. Raises PublishUnavailable
        when the call itself keeps failing (nothing of `chunk` is marked published then)."""
        remaining = list(chunk)
        for attempt in range(1, self.settings.max_attempts + 1):
            if attempt > 1:
                self._backoff(attempt)
            try:
                answer = self._events.put_events(Entries=[p.entry for p in remaining])
            except (ClientError, BotoCoreError) as exc:
                if attempt == self.settings.max_attempts:
                    raise PublishUnavailable(type(exc).__name__) from exc
                continue
            remaining = _refused(remaining, answer.get("Entries") or [], report)
            if not remaining:
                return
        self._park(remaining, report)

    def _backoff(self, attempt: int) -> None:
        base = self.settings.backoff_seconds * 2 ** (attempt - 2)
        self._sleep(min(5.0, base) * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not a secret

    def _park(self, refused: list[Pending], report: BatchReport) -> None:
        """Entries EventBridge kept refusing: onto the on-failure queue, whole, to be published later."""
        if self._sqs is None or not self.settings.failure_queue_url:
            raise PublishUnavailable("entries refused and no on-failure queue to keep them")
        for item in refused:
            body = {
                "reason": "PutEvents refused the entry",
                "error": item.error,
                "event_id": item.event_id,
                "sequence_number": item.sequence_number,
                "entry": item.entry,
            }
            try:
                self._sqs.send_message(QueueUrl=self.settings.failure_queue_url, MessageBody=json.dumps(body))
            except (ClientError, BotoCoreError) as exc:
                raise PublishUnavailable(f"could not park a refused entry: {type(exc).__name__}") from exc
            report.parked.append(item.event_id)
            logger.error("event parked on the on-failure queue", extra={**item.log_keys(), "error": item.error})


def republish(entries: Iterable[Mapping[str, Any]], events: Any) -> list[dict[str, Any]]:
    """Publish parked entries again (the ``entry`` of the on-failure queue's messages); returns the ones
    refused again."""
    refused: list[dict[str, Any]] = []
    items = [Pending("", str(json.loads(e["Detail"]).get("event_id")), dict(e)) for e in entries]
    for chunk in chunks(items):
        answer = events.put_events(Entries=[p.entry for p in chunk])
        for item, result in zip(chunk, answer.get("Entries") or [], strict=False):
            if not result.get("EventId"):
                refused.append(item.entry)
    return refused


@dataclass
class RedriveReport:
    entries_published: int = 0
    batches_published: int = 0  # stream batches Lambda gave up on, read again and published
    events_in_batches: int = 0
    kept: int = 0  # messages left on the queue (refused again, or their records expired from the stream)


def _refused(sent: list[Pending], results: list[dict[str, Any]], report: BatchReport) -> list[Pending]:
    """The entries a PutEvents answer refused (with their error); the published ones go on the report.
    Entries the answer does not cover (a short answer) count as refused."""
    refused: list[Pending] = []
    for item, result in zip(sent, results, strict=False):
        if result.get("EventId"):
            report.published.append(item.event_id)
            logger.info("event published", extra=item.log_keys())
        else:
            item.error = f"{result.get('ErrorCode')}: {result.get('ErrorMessage')}"
            refused.append(item)
    return refused + sent[len(results) :]


def redrive_failures(queue_url: str, sqs: Any, events: Any, streams: Any, publisher: EventPublisher) -> RedriveReport:
    """Empty the on-failure queue (`make republish`): parked entries are published again; for a batch
    Lambda gave up on (``DDBStreamBatchInfo``) its records are read back from the stream (24 h) and
    published like the first time. A message is deleted only once all it stands for is published."""
    report = RedriveReport()
    seen: set[str] = set()
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
            "Messages", []
        )
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            return report
        for message in fresh:
            seen.add(message["MessageId"])
            done = _redrive_one(json.loads(message["Body"]), events, streams, publisher, report)
            if done:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                report.kept += 1


def _redrive_one(
    body: Mapping[str, Any], events: Any, streams: Any, publisher: EventPublisher, report: RedriveReport
) -> bool:
    """Publish what one on-failure message stands for (a parked entry, or a stream batch Lambda gave up
    on); True when all of it is published."""
    if "entry" in body:
        done = not republish([body["entry"]], events)
        report.entries_published += int(done)
        return done
    if "DDBStreamBatchInfo" not in body:
        return False
    records = _batch_records(body["DDBStreamBatchInfo"], streams)
    if records is None:
        return False
    result = publisher.publish_records(records)
    done = result.first_unpublished is None
    report.batches_published += int(done)
    report.events_in_batches += len(result.published) if done else 0
    return done


def _batch_records(info: Mapping[str, Any], streams: Any) -> list[dict[str, Any]] | None:
    """The records of a stream batch, by its shard and sequence numbers; None once they have expired."""
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=info["streamArn"],
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=info["startSequenceNumber"],
        )["ShardIterator"]
    except ClientError:
        return None
    end = int(info["endSequenceNumber"])
    records: list[dict[str, Any]] = []
    while iterator:
        answer = streams.get_records(ShardIterator=iterator, Limit=1000)
        batch = answer.get("Records") or []
        records += [r for r in batch if int(r["dynamodb"]["SequenceNumber"]) <= end]
        if not batch or int(batch[-1]["dynamodb"]["SequenceNumber"]) >= end:
            break
        iterator = answer.get("NextShardIterator")
    return [_as_lambda_record(r) for r in records]


def _as_lambda_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it over (creation time in epoch seconds)."""
    stream = dict(record.get("dynamodb") or {})
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": stream}


def _epoch_iso(value: Any) -> str | None:
    """Stream records give ApproximateCreationDateTime in epoch seconds."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
