"""The fan-out publisher's logic, in process: which stream records become events, what a detail holds,
how PutEvents calls are cut and retried. (Over HTTP against moto: tests/integration/streams/test_fanout.py.)"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError

from airudder_ingest.storage.archive import unpack_envelope
from airudder_ingest.streams.fanout import (
    MAX_BYTES_PER_CALL,
    EventPublisher,
    FanoutSettings,
    chunks,
    entry_size,
    mask_phone,
    new_event_image,
)

ROOT = Path(__file__).resolve().parents[3]
BATCH = json.loads((ROOT / "events" / "stream" / "fanout" / "batch.json").read_text())
SCHEMA = json.loads((ROOT / "schemas" / "ingest-event.schema.json").read_text())
SETTINGS = FanoutSettings(event_bus="bus", failure_queue_url="https://sqs.local/q", archive_bucket="archive")


class FakeEvents:
    """PutEvents that refuses what `refuse` says (entry indexes per call) or raises."""

    def __init__(self, refuse: list[set[int]] | None = None, raise_times: int = 0) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.refuse = list(refuse or [])
        self.raise_times = raise_times

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        if self.raise_times:
            self.raise_times -= 1
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "x"}}, "PutEvents")
        refused = self.refuse.pop(0) if self.refuse else set()
        results = [
            {"ErrorCode": "ThrottlingException", "ErrorMessage": "x"} if n in refused else {"EventId": f"id-{n}"}
            for n in range(len(Entries))
        ]
        return {"FailedEntryCount": len(refused), "Entries": results}


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.sent.append(json.loads(MessageBody))


def event_records(count: int) -> list[dict[str, Any]]:
    """`count` distinct event inserts, made from the sample's event record."""
    template = next(r for r in BATCH["Records"] if new_event_image(r))
    records = []
    for n in range(count):
        record = copy.deepcopy(template)
        record["dynamodb"]["SequenceNumber"] = str(1000 + n)
        record["dynamodb"]["NewImage"]["event_id"] = {"S": f"{n:032x}"}
        record["dynamodb"]["NewImage"]["sk"] = {"S": f"EV#2025-04-15T09:31:12.000Z#{n:032x}"}
        records.append(record)
    return records


def test_only_new_event_items_are_published() -> None:
    kinds = [(r["eventName"], new_event_image(r) is not None) for r in BATCH["Records"]]
    # The sample holds an event insert, a state item inserted twice (moto's UpdateItem) and modified,
    # and a quarantined delivery: one event.
    assert kinds.count(("INSERT", True)) == 1 and len(kinds) == 5
    events = FakeEvents()
    publisher = EventPublisher(SETTINGS, events, FakeSqs(), sleep=lambda s: None)
    assert publisher.handle(BATCH) == {"batchItemFailures": []}
    assert len(events.calls) == 1 and len(events.calls[0]) == 1
    doubled = {"Records": BATCH["Records"] + BATCH["Records"]}  # the same insert twice: published once
    events.calls.clear()
    publisher.handle(doubled)
    assert len(events.calls[0]) == 1


def test_detail_is_the_facts_masked_and_matches_the_schema() -> None:
    events = FakeEvents()
    EventPublisher(SETTINGS, events, None, sleep=lambda s: None).handle(BATCH)
    entry = events.calls[0][0]
    detail = json.loads(entry["Detail"])
    jsonschema.validate(detail, SCHEMA)
    image = new_event_image(BATCH["Records"][0])
    assert image is not None
    assert entry["Source"] == "airudder.ingest" and entry["DetailType"] == image["webhook_type"]
    assert entry["EventBusName"] == "bus"
    assert detail["phone"] == mask_phone(image["phone"]) != image["phone"]
    assert detail["archive"] == {"bucket": "archive", "prefix": "raw/type=workflow.call/dt=2025-04-15/"}
    body = unpack_envelope(image["envelope"])["body"]
    assert body not in entry["Detail"] and image["phone"] not in entry["Detail"]
    included = FakeEvents()
    EventPublisher(FanoutSettings(event_bus="bus", phone_mode="included"), included, None).handle(BATCH)
    assert json.loads(included.calls[0][0]["Detail"])["phone"] == image["phone"]


def test_mask_phone() -> None:
    assert mask_phone("+6281234567890") == "+*********7890"
    assert mask_phone("1234") == "****"
    assert mask_phone("081234") == "**1234"


def test_settings_refuse_an_unknown_phone_mode() -> None:
    with pytest.raises(ValueError):
        FanoutSettings.from_env({"FANOUT_EVENT_BUS": "b", "FANOUT_PHONE_NUMBERS": "shown"})


def test_calls_hold_at_most_ten_entries_and_256_kb() -> None:
    events = FakeEvents()
    EventPublisher(SETTINGS, events, None).handle({"Records": event_records(25)})
    assert [len(c) for c in events.calls] == [10, 10, 5]
    from airudder_ingest.streams.fanout import Pending

    big = [Pending(str(n), str(n), {"Source": "s", "DetailType": "t", "Detail": "x" * 60_000}) for n in range(10)]
    cut = list(chunks(big))
    assert [len(c) for c in cut] == [4, 4, 2]
    assert all(sum(entry_size(p.entry) for p in c) <= MAX_BYTES_PER_CALL for c in cut)


def test_refused_entries_are_retried_alone_then_parked() -> None:
    events = FakeEvents(refuse=[{1, 3}, {0}, {0}])  # entries 1 and 3 refused, then 3 taken, 1 never
    sqs = FakeSqs()
    publisher = EventPublisher(SETTINGS, events, sqs, sleep=lambda s: None)
    records = event_records(5)
    assert publisher.handle({"Records": records}) == {"batchItemFailures": []}
    assert [len(c) for c in events.calls] == [5, 2, 1]
    detail_ids = [json.loads(e["Detail"])["event_id"] for e in events.calls[2]]
    assert [m["event_id"] for m in sqs.sent] == detail_ids == [f"{1:032x}"]
    assert sqs.sent[0]["entry"] == events.calls[0][1]  # parked whole: it can be published as it is


def test_a_call_that_keeps_failing_hands_the_rest_back_to_lambda() -> None:
    records = event_records(15)
    events = FakeEvents(raise_times=99)
    publisher = EventPublisher(SETTINGS, events, FakeSqs(), sleep=lambda s: None)
    answer = publisher.handle({"Records": records})
    assert answer == {"batchItemFailures": [{"itemIdentifier": "1000"}]}
    assert len(events.calls) == SETTINGS.max_attempts
    # The first chunk went out, the second failed: Lambda retries from the second chunk's first record.
    events = FakeEvents(raise_times=0)
    calls = iter([False, True, True, True])

    class SecondChunkFails(FakeEvents):
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            if next(calls):
                raise ClientError({"Error": {"Code": "InternalFailure", "Message": "x"}}, "PutEvents")
            return super().put_events(Entries)

    answer = EventPublisher(SETTINGS, SecondChunkFails(), FakeSqs(), sleep=lambda s: None).handle({"Records": records})
    assert answer == {"batchItemFailures": [{"itemIdentifier": "1010"}]}


def test_no_failure_queue_means_refused_entries_go_back_to_lambda() -> None:
    events = FakeEvents(refuse=[{0}, {0}, {0}])
    settings = FanoutSettings(event_bus="bus")
    answer = EventPublisher(settings, events, None, sleep=lambda s: None).handle({"Records": event_records(1)})
    assert answer == {"batchItemFailures": [{"itemIdentifier": "1000"}]}


def test_result_labels_come_from_the_body_and_are_labels_only() -> None:
    from airudder_ingest.streams.fanout import result_labels

    body = {
        "intention": "A",
        "event_label": {"EventLabel": "3"},
        "hangup_reason": "user_hangup",
        "ner_slots": {"name": "Andi"},
        "callee": "+6281298765432",
    }
    assert result_labels(json.dumps(body)) == {
        "intention": "A",
        "event_label": {"EventLabel": "3"},
        "hangup_reason": "user_hangup",
    }
    dialer = {"pds": {"type": "ContactStatus", "body": {"hangupReason": 12, "phoneNumber": "+8610081"}}}
    assert result_labels(json.dumps(dialer)) == {"hangup_reason": "12"}
    assert result_labels(None) == {} and result_labels("[1]") == {} and result_labels("{bad") == {}
    events = FakeEvents()
    EventPublisher(SETTINGS, events, None).handle(BATCH)
    detail = json.loads(events.calls[0][0]["Detail"])
    assert detail["result"] == {"intention": "A", "hangup_reason": "user_hangup"}  # the sample call's labels
