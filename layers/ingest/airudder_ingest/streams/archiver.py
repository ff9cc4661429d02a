"""Archiver: the table's stream in, the batched archive out (README, "Archiver").

    stream batch -> INSERTs of event and quarantine items (never a MODIFY or REMOVE: a TTL deletion is a
    REMOVE; never an item marked `in_archive`) -> each item's archive line (its packed envelope, or the
    claim check's bytes from S3) -> lines grouped by folder (area, webhook type, day) -> one gzip JSON
    Lines object per folder, named from the batch (archive.batch_object_name)

Retries cannot duplicate a line: the names depend only on the batch's first record, and a retried batch
starts at that record again, so a retry overwrites the objects a failed try wrote (with the same bytes,
plus the lines of the groups it did not reach). Hence no bisecting and no partial-batch answers on the
mapping: both change where a retried batch starts. What can fail:

* An S3 call failing (throttled, 5xx, unreachable): raised; Lambda retries the whole batch, a bounded
  number of times, then sends the batch's position to the on-failure queue (alarmed); the rebuild command
  (archive_rebuild.py) restores those lines from the table.
* A record that can never be archived (its envelope does not unpack, its claim check is gone, no day to
  file it under): set aside, with the raw stream image and the reason, as a line of
  quarantine/type=_unarchivable/dt=<day>/<batch name>, so it neither blocks its shard nor is lost.

Logs and metrics name event ids, quarantine ids, counts and keys: never a phone number or a body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from airudder_ingest.base import aws
from airudder_ingest.storage.archive import (
    LINE_VERSION,
    QUARANTINE_PREFIX,
    UNARCHIVABLE_TYPE,
    ClaimChecks,
    archive_line,
    batch_object_name,
    encode_jsonl_gz,
    line_place,
    partition_prefix,
    unpack_envelope,
)
from airudder_ingest.storage.store import inserted_image, item_from_stream

logger = Logger(child=True)
metrics = Metrics()

# The item types whose INSERT is a line of the archive.
ARCHIVED_ITEM_TYPES = frozenset({"event", "quarantine"})
# S3's answers for an object that is not there (404 needs s3:ListBucket; without it S3 answers 403).
_MISSING_OBJECT = frozenset({"NoSuchKey", "404", "NotFound"})
# A webhook type becomes a folder name (type=<type>): nothing that could leave or split the folder.
_FOLDER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Unarchivable(Exception):
    """An item whose line can never be written (retrying cannot help); the message is the reason."""


# ---------------------------------------------------------------------------------------- stream -> item


def inserted_item(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The event or quarantine item a record inserts, still to archive; None for anything else."""
    image = inserted_image(record, ARCHIVED_ITEM_TYPES)
    if image is None:
        return None
    if (image.get("in_archive") or {}).get("BOOL") is True:
        return None  # replayed from the archive: its line is there already
    return item_from_stream(image)


# ---------------------------------------------------------------------------------------- item -> line


def item_line(item: Mapping[str, Any], claims: ClaimChecks | None) -> dict[str, Any]:
    """The archive line of an event or quarantine item (plain values). Unarchivable when it can never
    be written; any other exception (S3 unreachable, throttled) is worth a retry."""
    blob: bytes | None
    if item.get("envelope") is not None:
        blob = bytes(item["envelope"])
    elif item.get("envelope_key"):
        if claims is None:
            raise Unarchivable("claim check without a bucket to read it from")
        key = str(item["envelope_key"])
        try:
            blob = claims.get(key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING_OBJECT:
                raise Unarchivable(f"claim check {key} is missing") from None
            raise
    else:
        raise Unarchivable("the item holds no envelope and no claim check")
    try:
        envelope = unpack_envelope(blob)
    except Exception as exc:  # zlib.error, ValueError (JSON or not an object), UnicodeDecodeError
        raise Unarchivable(f"the envelope does not unpack ({type(exc).__name__})") from None
    line = archive_line(item, envelope)
    area, webhook_type, day = line_place(line)
    if not _FOLDER_NAME.match(webhook_type) or webhook_type.startswith("_"):
        raise Unarchivable("the webhook type is not a folder name")
    if not _DAY.match(day):
        raise Unarchivable(f"no day to file it under in {area}/")
    return line


def line_id(line: Mapping[str, Any]) -> str:
    """The id a line is known by: its event id, or its quarantine id."""
    return str(line.get("quarantine_id") or line.get("event_id") or "")


# ---------------------------------------------------------------------------------------- the batch


@dataclass
class BatchReport:
    records: int = 0
    archived: int = 0  # lines written
    skipped: int = 0  # not an INSERT of an event/quarantine item, marked in_archive, or a repeat
    set_aside: int = 0
    objects: list[str] = field(default_factory=list)  # keys written (set-aside objects included)

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "archived": self.archived,
            "skipped": self.skipped,
            "set_aside": self.set_aside,
            "objects": len(self.objects),
        }


@dataclass
class _Group:
    key: str
    lines: list[dict[str, Any]] = field(default_factory=list)


class Archiver:
    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self.s3 = s3
        self._claims = ClaimChecks(bucket, s3)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Archiver:
        import os

        env = os.environ if environ is None else environ
        return cls(env["ARCHIVE_BUCKET"], aws.client("s3"))

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A DynamoDB stream batch in (Lambda's event); what was written out. Raises when the batch must
        be retried whole."""
        report = self.archive_records(event.get("Records") or [])
        metrics.add_metric(name="ArchiveLinesWritten", unit=MetricUnit.Count, value=report.archived)
        metrics.add_metric(name="ArchiveObjectsWritten", unit=MetricUnit.Count, value=len(report.objects))
        if report.set_aside:
            metrics.add_metric(name="ArchiveRecordsSetAside", unit=MetricUnit.Count, value=report.set_aside)
        return report.summary()

    def archive_records(self, records: Sequence[Mapping[str, Any]]) -> BatchReport:
        report = BatchReport(records=len(records))
        if not records:
            return report
        first = records[0]
        name = batch_object_name(
            str(first.get("eventSourceARN") or ""),
            str((first.get("dynamodb") or {}).get("SequenceNumber") or ""),
            str(first.get("eventID") or ""),
        )
        groups = self._grouped_lines(records, name, report)
        # Sorted: a retry writes in the same order (not needed for correctness, easier to follow in logs).
        for key in sorted(groups):
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=encode_jsonl_gz(groups[key].lines), ContentType="application/gzip"
            )
            report.objects.append(key)
        logger.info(
            "stream batch archived",
            extra={
                **report.summary(),
                "first_sequence_number": (first.get("dynamodb") or {}).get("SequenceNumber"),
                "keys": report.objects[:20],
            },
        )
        return report

    def _grouped_lines(self, records: Sequence[Mapping[str, Any]], name: str, report: BatchReport) -> dict[str, _Group]:
        """The batch's lines by the key of the object they go in (`name` in their folder)."""
        groups: dict[str, _Group] = {}
        seen: set[tuple[str, str]] = set()
        for record in records:
            item = inserted_item(record)
            if item is None:
                report.skipped += 1
                continue
            identity = (str(item.get("pk")), str(item.get("sk")))
            if identity in seen:  # the same insert twice in one batch (moto does this): one line
                report.skipped += 1
                continue
            seen.add(identity)
            key, line = self._filed_line(record, item, name, report)
            groups.setdefault(key, _Group(key)).lines.append(line)
        return groups

    def _filed_line(
        self, record: Mapping[str, Any], item: Mapping[str, Any], name: str, report: BatchReport
    ) -> tuple[str, dict[str, Any]]:
        """An item's archive line and its object's key; set aside (with the reason) when it can never be
        archived."""
        try:
            line = item_line(item, self._claims)
        except Unarchivable as exc:
            report.set_aside += 1
            key = partition_prefix(QUARANTINE_PREFIX, UNARCHIVABLE_TYPE, aside_day(record, item)) + name
            logger.warning(
                "stream record set aside: it can never be archived",
                extra={**_log_keys(item), "reason": str(exc), "key": key},
            )
            return key, set_aside_line(record, item, str(exc))
        report.archived += 1
        return partition_prefix(*line_place(line)) + name, line


def set_aside_line(record: Mapping[str, Any], item: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """What the archive keeps of a record it can never archive: the reason and the raw stream image."""
    stream = record.get("dynamodb") or {}
    return {
        "v": LINE_VERSION,
        "unarchivable": reason,
        "item_type": item.get("item_type"),
        "event_id": _text(item.get("event_id")),
        "quarantine_id": _text(item.get("quarantine_id")),
        "webhook_type": _text(item.get("webhook_type")),
        "received_at": _text(item.get("received_at")),
        "pk": _text(item.get("pk")),
        "sk": _text(item.get("sk")),
        "stream": {
            "event_id": record.get("eventID"),
            "sequence_number": stream.get("SequenceNumber"),
            "source_arn": record.get("eventSourceARN"),
        },
        # Lambda's JSON of the item as written (binary as base64): everything needed to archive it by hand.
        "new_image": stream.get("NewImage"),
    }


def aside_day(record: Mapping[str, Any], item: Mapping[str, Any]) -> str:
    """The dt= of a set-aside record: the day it was received, else the day the stream saw it."""
    received = str(item.get("received_at") or "")[:10]
    if _DAY.match(received):
        return received
    created: Any = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    try:
        return datetime.fromtimestamp(float(created), UTC).date().isoformat()
    except (TypeError, ValueError, OverflowError):
        return "1970-01-01"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _log_keys(item: Mapping[str, Any]) -> dict[str, Any]:
    keys = {"item_type": item.get("item_type"), "webhook_type": _text(item.get("webhook_type"))}
    if item.get("event_id"):
        keys["event_id"] = str(item["event_id"])
    if item.get("quarantine_id"):
        keys["quarantine_id"] = str(item["quarantine_id"])
    if item.get("request_id"):
        keys["correlation_id"] = str(item["request_id"])
    return keys


def archived_ids(lines: Iterable[Mapping[str, Any]]) -> set[str]:
    """The ids (event or quarantine) of archive lines."""
    return {line_id(line) for line in lines if line_id(line)}
