"""The raw archive in S3: every delivery as received, one JSON line per object.

Object layout (see README, "S3 layout"):
  raw/type=<webhook type>/dt=<YYYY-MM-DD>/<event id>.json          accepted deliveries
  quarantine/type=<webhook type>/dt=<YYYY-MM-DD>/<sha256>.json      rejected but kept
The key is derived from the content, so a redelivery overwrites the same object. The object is a
one-line JSON envelope (Athena reads one record per line) holding the body exactly as received.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .events import utf8_text

RAW_PREFIX = "raw"
QUARANTINE_PREFIX = "quarantine"
ENVELOPE_VERSION = 1
# Headers worth keeping with the body; the token header is never kept.
KEPT_HEADERS = ("content-type", "content-encoding", "user-agent", "x-airudder-sign")


def partition_prefix(area: str, webhook_type: str, day: str) -> str:
    """The folder of one webhook type and day under `area` (RAW_PREFIX or QUARANTINE_PREFIX)."""
    return f"{area}/type={webhook_type}/dt={day}/"


def raw_key(webhook_type: str, day: str, event_id: str) -> str:
    return f"{partition_prefix(RAW_PREFIX, webhook_type, day)}{event_id}.json"


def quarantine_key(webhook_type: str, day: str, digest: str) -> str:
    return f"{partition_prefix(QUARANTINE_PREFIX, webhook_type, day)}{digest}.json"


def is_quarantine_key(key: str) -> bool:
    return key.startswith(f"{QUARANTINE_PREFIX}/")


@dataclass(frozen=True)
class Envelope:
    webhook_type: str
    route: str
    path: str
    received_at: str
    body: bytes
    raw_sha256: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    source: str = "webhook"
    source_ip: str = ""
    request_id: str = ""
    event_id: str | None = None
    event_time: str | None = None
    reason: str | None = None
    # Sync only: the keys the pulled record had on top of `body` (the webhook body it stands for).
    pull_only: Mapping[str, Any] | None = None

    def to_json_line(self) -> bytes:
        try:
            text, encoding = self.body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(self.body).decode(), "base64"
        record: dict[str, Any] = {
            "v": ENVELOPE_VERSION,
            "event_id": self.event_id,
            "webhook_type": self.webhook_type,
            "route": self.route,
            "path": self.path,
            "source": self.source,
            "received_at": self.received_at,
            "event_time": self.event_time,
            "request_id": self.request_id,
            "source_ip": self.source_ip,
            "headers": {k: v for k, v in self.headers.items() if k in KEPT_HEADERS},
            "query": {k: v for k, v in self.query.items() if k != "token"},
            "raw_sha256": self.raw_sha256,
            "body_encoding": encoding,
            "body": text,
        }
        if self.reason is not None:
            record["reason"] = self.reason
        if self.pull_only is not None:
            record["pull_only"] = dict(self.pull_only)
        # utf8_text: a lone surrogate (in a pulled record, a header) is kept as its JSON escape.
        return utf8_text(json.dumps(record, ensure_ascii=False, separators=(",", ":"))).encode() + b"\n"


def body_of(record: Mapping[str, Any]) -> bytes:
    """The body exactly as received, from an archived envelope."""
    text = record.get("body") or ""
    return base64.b64decode(text) if record.get("body_encoding") == "base64" else text.encode("utf-8")


class RawArchive:
    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self._s3 = s3

    def put(self, key: str, envelope: Envelope) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=envelope.to_json_line(), ContentType="application/json")

    def get(self, key: str) -> dict[str, Any]:
        answer = self._s3.get_object(Bucket=self.bucket, Key=key)
        return json.loads(answer["Body"].read())

    def put_new(self, key: str, envelope: Envelope) -> bool:
        """Write unless an object is already at `key` (S3 conditional write, If-None-Match: *).

        False when one was there (or another conditional write to the key was under way): the
        scheduled sync uses this so that it never replaces a webhook's envelope, which holds the body
        byte for byte as AIRUDDER sent it."""
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=envelope.to_json_line(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.get("Code") in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                return False
            raise
        return True

    # ------------------------------------------------------------------ reading back (CLI: replay)

    def webhook_types(self, area: str = RAW_PREFIX) -> list[str]:
        """The webhook types that have at least one object under `area`."""
        prefix = f"{area}/type="
        found: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        ):
            for common in page.get("CommonPrefixes") or []:
                found.append(common["Prefix"][len(prefix) :].rstrip("/"))
        return found

    def day_keys(self, day: str, webhook_type: str | None = None, area: str = RAW_PREFIX) -> Iterator[str]:
        """Keys of the objects of one day (the `dt=` partition) under `area`, type after type."""
        for kind in [webhook_type] if webhook_type else self.webhook_types(area):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=partition_prefix(area, kind, day)
            )
            for page in pages:
                for obj in page.get("Contents") or []:
                    if obj["Key"].endswith(".json"):
                        yield obj["Key"]
