"""The archive of every delivery: the envelope kept on its item, and the batched JSON Lines files in S3.

A delivery's envelope (the body exactly as received, where it came from, the headers worth keeping) is
packed (zlib) onto the event or quarantine item the ingest path writes: one durable write before 200.
The archiver (archiver.py) reads the table's stream and writes the envelopes, in batches, as gzip JSON
Lines (README, "S3 layout"):

  raw/type=<webhook type>/dt=<event day>/<name>.jsonl.gz          accepted deliveries
  quarantine/type=<webhook type>/dt=<day received>/<name>.jsonl.gz  rejected but kept
  claims/<id>.zz                                                   an envelope too large for its item

The name of a batch's object derives from the stream batch (its first record: batch_object_name), so a
retried batch overwrites its own objects and each event is in the archive once.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airudder_ingest.base.events import utf8_text

RAW_PREFIX = "raw"
QUARANTINE_PREFIX = "quarantine"
CLAIM_PREFIX = "claims/"
# The archiver's folder (under quarantine/) for stream records it can never archive, kept with the reason.
UNARCHIVABLE_TYPE = "_unarchivable"
LINE_VERSION = 2
# Headers worth keeping with the body; the token header is never kept.
KEPT_HEADERS = ("content-type", "content-encoding", "user-agent", "x-airudder-sign")
# Facts of an event item copied onto its archive line (Athena columns without json_extract).
LINE_FACTS = ("entity_kind", "entity_id", "time_source", "status", "phone", "case_id", "workflow_id",
              "nodetask_id", "task_id", "call_id", "recording_url", "agent", "results", "unreadable",
              "left_out")  # fmt: skip
_EVENT_HEAD = ("event_id", "webhook_type", "route", "source", "received_at", "event_time", "request_id")
_QUARANTINE_TAIL = ("quarantine_id", "reason", "http_status", "size")
# Never on a line: the plaintext of an encrypted body stays on the item (the archive keeps ciphertext).
_ITEM_ONLY = ("decoded",)


def partition_prefix(area: str, webhook_type: str, day: str) -> str:
    """The folder of one webhook type and day under `area` (RAW_PREFIX or QUARANTINE_PREFIX)."""
    return f"{area}/type={webhook_type}/dt={day}/"


def batch_object_name(stream_arn: str, first_sequence: str, first_event_id: str) -> str:
    """The archiver's object name for one stream batch, from the batch's first record.

    Lambda's stream records carry no shard id. A retried batch starts at the same record (its shard's
    checkpoint does not move while the batch fails, and the archiver neither bisects nor reports partial
    failures), so a name taken from the first record is the same on every retry, even when the retry
    reads further than the first try did; a name that used the last record too would not be. The sequence
    number comes first (one shard's objects list in stream order); the digest of the stream ARN and the
    record's eventID (unique per record) keeps two shards, or a re-created stream, from sharing a name.
    """
    digest = hashlib.sha256(f"{stream_arn}\n{first_event_id}".encode()).hexdigest()[:12]
    sequence = "".join(ch for ch in first_sequence if ch.isalnum())[:64] or "0"
    return f"{sequence}-{digest}.jsonl.gz"


def rebuild_object_name(event_ids: Iterable[str]) -> str:
    """The rebuild command's object name: the same missing events give the same name."""
    digest = hashlib.sha256("\n".join(sorted(event_ids)).encode()).hexdigest()[:16]
    return f"rebuild-{digest}.jsonl.gz"


def claim_key(name: str) -> str:
    return f"{CLAIM_PREFIX}{name}.zz"


@dataclass(frozen=True)
class Envelope:
    """What the archive keeps of a delivery, besides the facts its item holds."""

    path: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    source_ip: str = ""
    # Sync only: the keys the pulled record had on top of `body` (the webhook body it stands for).
    pull_only: Mapping[str, Any] | None = None
    # Encrypted routes only: the decrypted body's canonical JSON (kept on the item, never archived).
    decoded: str | None = None

    def fields(self) -> dict[str, Any]:
        try:
            text, encoding = self.body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(self.body).decode(), "base64"
        record: dict[str, Any] = {
            "path": self.path,
            "source_ip": self.source_ip,
            "headers": {k: v for k, v in self.headers.items() if k in KEPT_HEADERS},
            "query": {k: v for k, v in self.query.items() if k != "token"},
            "raw_sha256": hashlib.sha256(self.body).hexdigest(),
            "body_encoding": encoding,
            "body": text,
        }
        if self.pull_only is not None:
            record["pull_only"] = dict(self.pull_only)
        if self.decoded is not None:
            record["decoded"] = self.decoded
        return record

    def pack(self) -> bytes:
        return pack_envelope(self.fields())


def _compact(value: Any) -> bytes:
    # utf8_text: a lone surrogate (in a pulled record, a header) is kept as its JSON escape.
    return utf8_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"))).encode()


def pack_envelope(fields: Mapping[str, Any]) -> bytes:
    return zlib.compress(_compact(fields), 6)


def unpack_envelope(blob: bytes) -> dict[str, Any]:
    value = json.loads(zlib.decompress(bytes(blob)))
    if not isinstance(value, dict):
        raise ValueError("an envelope is a JSON object")
    return value


def body_of(record: Mapping[str, Any]) -> bytes:
    """The body exactly as received, from an archive line or unpacked envelope."""
    text = record.get("body") or ""
    return base64.b64decode(text) if record.get("body_encoding") == "base64" else str(text).encode("utf-8")


def event_body(envelope: Mapping[str, Any]) -> str | None:
    """The JSON text an event was read from: the decrypted body on encrypted routes, else the body as
    received (None when that is not UTF-8)."""
    if isinstance(envelope.get("decoded"), str):
        return str(envelope["decoded"])
    if envelope.get("body_encoding") == "base64":
        return None
    return str(envelope.get("body") or "")


def _plain(value: Any) -> Any:
    """DynamoDB's Decimal numbers and sets as JSON takes them."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset | tuple | list):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def archive_line(item: Mapping[str, Any], envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The archive record of an event or quarantine item (deserialized) and its unpacked envelope."""
    quarantined = item.get("item_type") == "quarantine"
    line: dict[str, Any] = {"v": LINE_VERSION}
    for name in _EVENT_HEAD:
        line[name] = _plain(item.get(name))
    if quarantined:
        line["event_id"] = None
        line["event_time"] = None
    for name, value in envelope.items():
        if name not in _ITEM_ONLY:
            line[name] = value
    if quarantined:
        for name in _QUARANTINE_TAIL:
            line[name] = _plain(item.get(name))
    else:
        for name in LINE_FACTS:
            value = item.get(name)
            if value is not None:
                line[name] = _plain(value)
    return line


def line_place(line: Mapping[str, Any]) -> tuple[str, str, str]:
    """(area, webhook type, day) of an archive line: its folder."""
    if line.get("quarantine_id"):
        return QUARANTINE_PREFIX, str(line.get("webhook_type")), str(line.get("received_at") or "")[:10]
    return RAW_PREFIX, str(line.get("webhook_type")), str(line.get("event_time") or "")[:10]


def json_line(line: Mapping[str, Any]) -> bytes:
    """One record of a JSON Lines object, newline included."""
    return _compact(line) + b"\n"


def encode_jsonl_gz(lines: Iterable[Mapping[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    # mtime=0: the same lines give the same bytes (a retried batch writes an identical object).
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as out:
        for line in lines:
            out.write(json_line(line))
    return buffer.getvalue()


def iter_jsonl(stream: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    for raw in stream:
        if raw.strip():
            yield json.loads(raw)


def iter_jsonl_gz(data: bytes) -> Iterator[dict[str, Any]]:
    with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream:
        yield from iter_jsonl(stream)


class ClaimChecks:
    """Envelopes too large for their item, in S3 (written before the item that points to them)."""

    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self._s3 = s3

    def put(self, key: str, blob: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=blob, ContentType="application/octet-stream")

    def get(self, key: str) -> bytes:
        return bytes(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())


class ArchiveReader:
    """The batched archive read back (CLI: export, replay, unreadable; the rebuild command)."""

    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self._s3 = s3

    def webhook_types(self, area: str = RAW_PREFIX) -> list[str]:
        """The webhook types that have at least one object under `area` (never a folder whose name
        starts with `_`: the archiver's set-aside records, UNARCHIVABLE_TYPE, are not deliveries)."""
        prefix = f"{area}/type="
        found: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        ):
            for common in page.get("CommonPrefixes") or []:
                name = common["Prefix"][len(prefix) :].rstrip("/")
                if not name.startswith("_"):
                    found.append(name)
        return found

    def day_objects(self, day: str, webhook_type: str | None = None, area: str = RAW_PREFIX) -> Iterator[str]:
        """Keys of the objects of one day (the `dt=` partition) under `area`, type after type."""
        for kind in [webhook_type] if webhook_type else self.webhook_types(area):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=partition_prefix(area, kind, day)
            )
            for page in pages:
                for obj in page.get("Contents") or []:
                    if obj["Key"].endswith(".jsonl.gz"):
                        yield obj["Key"]

    def lines(self, key: str) -> Iterator[dict[str, Any]]:
        """The records of one object, streamed (an object is never held whole in memory)."""
        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        with gzip.GzipFile(fileobj=body, mode="rb") as stream:
            yield from iter_jsonl(stream)

    def day_lines(self, day: str, webhook_type: str | None = None, area: str = RAW_PREFIX) -> Iterator[dict[str, Any]]:
        for key in self.day_objects(day, webhook_type, area):
            yield from self.lines(key)

    def put_object(self, key: str, data: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/gzip")
