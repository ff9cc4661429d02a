"""The archiver's logic, in process: which stream records become lines, how lines are grouped and named,
what is set aside, and that a retried batch overwrites its own objects. (Over HTTP against moto, driven
from the table's stream: tests/integration/streams/test_archive_stream.py.)"""

from __future__ import annotations

import base64
import io
import zlib
from dataclasses import replace
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from airudder_ingest.models.record import EventRecord
from airudder_ingest.storage.archive import (
    Envelope,
    batch_object_name,
    claim_key,
    iter_jsonl_gz,
)
from airudder_ingest.storage.store import event_item, quarantine_item
from airudder_ingest.streams.archiver import Archiver, inserted_item

STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2026-11-01T00:00:00.000"
BUCKET = "archive"
_serializer = TypeSerializer()


class FakeS3:
    """Objects in a dict; `fail_put_at` makes the n-th put_object (1-based, counted from now) raise."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[str] = []
        self.fail_put_at: int | None = None

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        assert Bucket == BUCKET
        self.puts.append(Key)
        if self.fail_put_at is not None and len(self.puts) == self.fail_put_at:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "reduce your request rate"}}, "PutObject")
        self.objects[Key] = bytes(Body)
        return {}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "not there"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}


def record_of(
    n: int,
    webhook_type: str = "workflow.call",
    event_time: str = "2026-11-20T10:00:00.000Z",
    *,
    body: str | None = None,
) -> EventRecord:
    return EventRecord(
        event_id=f"ev{n:04d}",
        webhook_type=webhook_type,
        route=webhook_type,
        source="webhook",
        received_at="2026-11-20T10:00:01.000Z",
        event_time=event_time,
        time_source="payload",
        entity_kind="CALL",
        entity_id=f"call-{n}",
        phone="+6281234567890",
        call_id=f"call-{n}",
    )


def envelope_of(n: int) -> Envelope:
    return Envelope(path="/webhooks/workflow/call", body=f'{{"callId": "call-{n}", "n": {n}}}'.encode())


def lambda_image(item: dict[str, Any]) -> dict[str, Any]:
    """An item as Lambda's stream event carries it (binary as base64 text)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, bytes | bytearray):
            return base64.b64encode(bytes(value)).decode()
        return value

    typed = {k: _serializer.serialize(v) for k, v in item.items() if v is not None}
    return {k: plain(v) for k, v in typed.items()}


_sequence = iter(range(10**6, 10**7))


def stream_record(item: dict[str, Any], event_name: str = "INSERT") -> dict[str, Any]:
    sequence = next(_sequence)
    return {
        "eventID": f"id-{sequence}",
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM,
        "dynamodb": {
            "ApproximateCreationDateTime": 1795000000,
            "SequenceNumber": f"{sequence:021d}",
            "NewImage": lambda_image(item),
            "StreamViewType": "NEW_IMAGE",
        },
    }


def event_record(n: int, **kwargs: Any) -> dict[str, Any]:
    item = event_item(record_of(n, **kwargs), envelope=envelope_of(n).pack())
    return stream_record(item)


def quarantine_record(digest: str, *, envelope: bytes | None = None) -> dict[str, Any]:
    item = quarantine_item(
        digest=digest,
        webhook_type="workflow.call",
        route="workflow.call",
        path="/webhooks/workflow/call",
        reason="not JSON",
        status=400,
        received_at="2026-11-21T08:00:00.000Z",
        size=7,
        envelope=envelope
        if envelope is not None
        else Envelope(path="/webhooks/workflow/call", body=b"not{json").pack(),
    )
    return stream_record(item)


def lines_of(s3: FakeS3) -> dict[str, list[dict[str, Any]]]:
    return {key: list(iter_jsonl_gz(data)) for key, data in s3.objects.items() if key.endswith(".jsonl.gz")}


def archived_ids(s3: FakeS3, prefix: str = "raw/") -> list[str]:
    return sorted(
        str(line.get("event_id") or line.get("quarantine_id"))
        for key, lines in lines_of(s3).items()
        if key.startswith(prefix)
        for line in lines
    )


def test_a_batch_is_one_object_per_type_and_day_named_from_its_first_record() -> None:
    records = [
        event_record(1),
        event_record(2, webhook_type="workflow.dialer"),
        event_record(3),
        event_record(4, event_time="2026-11-21T00:00:01.000Z"),
        quarantine_record("q" * 64),
    ]
    s3 = FakeS3()
    summary = Archiver(BUCKET, s3).handle({"Records": records})
    first = records[0]
    name = batch_object_name(STREAM, first["dynamodb"]["SequenceNumber"], first["eventID"])
    assert sorted(s3.objects) == [
        f"quarantine/type=workflow.call/dt=2026-11-21/{name}",
        f"raw/type=workflow.call/dt=2026-11-20/{name}",
        f"raw/type=workflow.call/dt=2026-11-21/{name}",
        f"raw/type=workflow.dialer/dt=2026-11-20/{name}",
    ]
    assert summary == {"records": 5, "archived": 5, "skipped": 0, "set_aside": 0, "objects": 4}
    found = lines_of(s3)
    assert [line["event_id"] for line in found[f"raw/type=workflow.call/dt=2026-11-20/{name}"]] == ["ev0001", "ev0003"]
    line = found[f"raw/type=workflow.call/dt=2026-11-20/{name}"][0]
    # The line holds the envelope as received and the facts; the envelope blob itself is not on it.
    assert line["body"] == '{"callId": "call-1", "n": 1}' and line["path"] == "/webhooks/workflow/call"
    assert line["call_id"] == "call-1" and line["v"] == 2 and "envelope" not in line
    (quarantined,) = found[f"quarantine/type=workflow.call/dt=2026-11-21/{name}"]
    assert quarantined["quarantine_id"] == "q" * 64 and quarantined["body"] == "not{json"
    assert quarantined["reason"] == "not JSON" and quarantined["http_status"] == 400


def test_names_differ_between_batches_and_streams_and_stay_put_on_a_retry() -> None:
    a = batch_object_name(STREAM, "000000000000000000101", "e1")
    assert a == batch_object_name(STREAM, "000000000000000000101", "e1")
    assert a.startswith("000000000000000000101-") and a.endswith(".jsonl.gz")
    assert a != batch_object_name(STREAM, "000000000000000000102", "e2")
    assert a != batch_object_name(STREAM.replace("2026-11-01", "2026-11-02"), "000000000000000000101", "e1")
    assert a != batch_object_name(STREAM, "000000000000000000101", "e9")  # another shard, same number


def test_only_inserts_of_event_and_quarantine_items_not_yet_archived_become_lines() -> None:
    state = {"pk": "CALL#c1", "sk": "STATE", "item_type": "state", "status": "answered"}
    archived_already = event_item(record_of(7), envelope=envelope_of(7).pack(), in_archive=True)
    records = [
        stream_record(state),
        stream_record(event_item(record_of(5), envelope=envelope_of(5).pack()), "MODIFY"),
        stream_record(event_item(record_of(6), envelope=envelope_of(6).pack()), "REMOVE"),  # TTL
        stream_record(archived_already),
        event_record(8),
    ]
    assert [inserted_item(r) is not None for r in records] == [False, False, False, False, True]
    s3 = FakeS3()
    summary = Archiver(BUCKET, s3).handle({"Records": records})
    assert summary["archived"] == 1 and summary["skipped"] == 4
    assert archived_ids(s3) == ["ev0008"]


def test_the_same_insert_twice_in_a_batch_is_one_line() -> None:
    record = event_record(9)
    again = {**record, "eventID": "another", "dynamodb": {**record["dynamodb"], "SequenceNumber": "9" * 21}}
    s3 = FakeS3()
    Archiver(BUCKET, s3).handle({"Records": [record, again]})
    assert archived_ids(s3) == ["ev0009"]


def test_a_claim_check_is_read_from_s3() -> None:
    s3 = FakeS3()
    key = claim_key("ev0010")
    s3.objects[key] = envelope_of(10).pack()
    item = event_item(record_of(10), envelope=None, envelope_key=key)
    Archiver(BUCKET, s3).handle({"Records": [stream_record(item)]})
    (line,) = [line for k, lines in lines_of(s3).items() if k.startswith("raw/") for line in lines]
    assert line["event_id"] == "ev0010" and line["body"] == '{"callId": "call-10", "n": 10}'


def test_what_can_never_be_archived_is_set_aside_with_its_image_and_the_rest_is_archived() -> None:
    corrupt = event_item(record_of(11), envelope=b"not zlib at all")
    not_an_object = event_item(record_of(12), envelope=zlib.compress(b"[1]"))
    gone = event_item(record_of(13), envelope=None, envelope_key=claim_key("ev0013"))
    no_day = replace(record_of(14), event_time="")
    undated = event_item(no_day, envelope=envelope_of(14).pack())
    records = [
        stream_record(corrupt),
        stream_record(not_an_object),
        stream_record(gone),
        stream_record(undated),
        event_record(15),
    ]
    s3 = FakeS3()
    summary = Archiver(BUCKET, s3).handle({"Records": records})
    assert summary["set_aside"] == 4 and summary["archived"] == 1
    assert archived_ids(s3) == ["ev0015"]
    aside = {k: v for k, v in lines_of(s3).items() if k.startswith("quarantine/type=_unarchivable/")}
    (key,) = aside
    assert key.startswith("quarantine/type=_unarchivable/dt=2026-11-20/")
    reasons = {line["event_id"]: line["unarchivable"] for line in aside[key]}
    assert set(reasons) == {"ev0011", "ev0012", "ev0013", "ev0014"}
    assert "does not unpack" in reasons["ev0011"] and "does not unpack" in reasons["ev0012"]
    assert "claims/ev0013.zz is missing" in reasons["ev0013"] and "no day" in reasons["ev0014"]
    # The raw image is kept: the corrupt envelope is still there, byte for byte.
    corrupt_line = next(line for line in aside[key] if line["event_id"] == "ev0011")
    assert base64.b64decode(corrupt_line["new_image"]["envelope"]["B"]) == b"not zlib at all"
    assert corrupt_line["stream"]["sequence_number"] == records[0]["dynamodb"]["SequenceNumber"]


def test_a_batch_failing_mid_write_raises_and_its_retry_leaves_each_line_once() -> None:
    records = [event_record(20 + n, webhook_type=t) for n, t in enumerate(["workflow.call", "workflow.dialer"] * 3)]
    s3 = FakeS3()
    s3.fail_put_at = 2  # the first group is written, the second put fails
    with pytest.raises(ClientError):
        Archiver(BUCKET, s3).handle({"Records": records})
    assert len(s3.objects) == 1
    s3.fail_put_at = None
    Archiver(BUCKET, s3).handle({"Records": records})  # Lambda retries the same batch
    assert archived_ids(s3) == [f"ev{20 + n:04d}" for n in range(6)]
    assert len(s3.objects) == 2


def test_a_retry_that_reads_further_overwrites_the_first_try_and_adds_the_rest() -> None:
    records = [event_record(30 + n) for n in range(4)]
    s3 = FakeS3()
    Archiver(BUCKET, s3).handle({"Records": records[:2]})  # written, then the invocation failed
    Archiver(BUCKET, s3).handle({"Records": records})  # the retry started at the same record
    assert archived_ids(s3) == ["ev0030", "ev0031", "ev0032", "ev0033"]
    assert len(s3.objects) == 1


def test_the_same_batch_gives_the_same_bytes() -> None:
    records = [event_record(40), event_record(41, webhook_type="workflow.dialer")]
    first, second = FakeS3(), FakeS3()
    Archiver(BUCKET, first).handle({"Records": records})
    Archiver(BUCKET, second).handle({"Records": records})
    assert first.objects == second.objects


def test_logs_name_ids_never_phones_or_bodies(caplog: pytest.LogCaptureFixture) -> None:
    records = [event_record(60), stream_record(event_item(record_of(61), envelope=b"junk"))]
    with caplog.at_level("INFO"):
        Archiver(BUCKET, FakeS3()).handle({"Records": records})
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "ev0061" in text
    assert "+6281234567890" not in text and "call-60" not in text


class ListingS3(FakeS3):
    """FakeS3 with list_objects_v2 (Prefix, Delimiter) through a paginator, as ArchiveReader uses it."""

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        objects = self.objects

        class Pages:
            def paginate(self, Bucket: str, Prefix: str, Delimiter: str | None = None) -> list[dict[str, Any]]:
                keys = sorted(k for k in objects if k.startswith(Prefix))
                if Delimiter:
                    folders = sorted({Prefix + k[len(Prefix) :].split(Delimiter, 1)[0] + Delimiter for k in keys})
                    return [{"CommonPrefixes": [{"Prefix": f} for f in folders]}]
                return [{"Contents": [{"Key": k} for k in keys]}]

        return Pages()


def test_readers_of_the_archive_never_see_the_set_aside_records() -> None:
    from airudder_ingest.storage.archive import ArchiveReader

    s3 = ListingS3()
    bad = event_item(record_of(70), envelope=b"junk")
    Archiver(BUCKET, s3).handle({"Records": [stream_record(bad), quarantine_record("q" * 64), event_record(72)]})
    assert any("/type=_unarchivable/" in key for key in s3.objects)
    reader = ArchiveReader(BUCKET, s3)
    assert reader.webhook_types("quarantine") == ["workflow.call"]
    assert [line["quarantine_id"] for line in reader.day_lines("2026-11-21", area="quarantine")] == ["q" * 64]
    assert [line["event_id"] for line in reader.day_lines("2026-11-20")] == ["ev0072"]
