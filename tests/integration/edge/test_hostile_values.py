"""Values that once made an authenticated delivery fail for good (issue 11), over HTTP against moto.

Each class was answered 500 (or 503 on every retry) with nothing kept, so AIRUDDER retried five times and
dropped it. Now each is kept, as an event (the value in the archived body, left out of the item's facts
where it does not fit) or quarantined with the reason, answered below 500, and the retry gets the same
answer: lone surrogates, numbers and times out of range, ids and fields past DynamoDB's limits.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import requests

from airudder_ingest.base.limits import DIGEST_PREFIX
from airudder_ingest.storage.archive import body_of

from ..stack_support import Client, Inspector, all_samples

pytestmark = pytest.mark.integration
DIALER = "/webhooks/workflow/dialer"
CALL_ROUTE = "/webhooks/workflow/call"


def contact_text(call_id: str, **fields: str) -> bytes:
    """A dialer ContactStatus body as JSON text; `fields` are JSON literals written as they are (1e400,
    NaN, a 400-digit number: what Python's json.dumps cannot write)."""
    body = {"callid": json.dumps(call_id), "state": '"HANGUP"', "phoneNumber": '"+6281200000009"', **fields}
    inner = ",".join(f"{json.dumps(k)}:{v}" for k, v in body.items())
    return ('{"workflow_id":"wf-hostile","pds":{"type":"ContactStatus","body":{' + inner + "}}}").encode()


def kept(inspector: Inspector, answer: requests.Response, raw: bytes) -> tuple[str, str]:
    """Assert that the body is kept byte for byte (as an event or in quarantine); what it was kept as."""
    assert answer.status_code < 500, answer.text[:300]
    store = inspector.store()
    if answer.status_code == 200:
        event = inspector.event(answer.headers["x-event-id"])
        assert event is not None
        assert body_of(inspector.archived(event)) == raw
        return "event", event["event_id"]
    assert answer.status_code == 400, answer.text[:300]
    quarantine_id = answer.json()["quarantine_id"]
    item = store.get_quarantine(quarantine_id)
    assert item is not None and item["http_status"] == 400 and item["reason"]
    assert body_of(inspector.archived(item)) == raw
    return "quarantine", quarantine_id


def post_twice(client: Client, inspector: Inspector, path: str, raw: bytes) -> tuple[requests.Response, str]:
    """Post `raw` and post it again (AIRUDDER's retry): both kept the same way, answered the same."""
    first = client.post(path, None, raw=raw)
    outcome = kept(inspector, first, raw)
    second = client.post(path, None, raw=raw)
    assert second.status_code == first.status_code
    assert kept(inspector, second, raw) == outcome
    if first.status_code == 200:
        assert (first.headers["x-ingest-outcome"], second.headers["x-ingest-outcome"]) == ("stored", "duplicate")
    return first, outcome[1]


# ---------------------------------------------------------------------------------------------- lone surrogates


@pytest.mark.parametrize("sample", all_samples(), ids=lambda s: s.name)
def test_a_lone_surrogate_in_a_body_is_stored_on_every_route(client: Client, inspector: Inspector, sample: Any) -> None:
    value = sample.body()
    assert isinstance(value, dict)
    # What JavaScript or Java send when text is cut inside an emoji; json.dumps writes it as "\ud83d".
    value["note"] = "cut inside an emoji \ud83d"
    raw = json.dumps(value).encode()
    assert b"\\ud83d" in raw
    answer, event_id = post_twice(client, inspector, sample.path, raw)
    assert answer.status_code == 200
    event = inspector.event(event_id)
    assert event is not None and "\\ud83d" in inspector.archived(event)["body"]


@pytest.mark.parametrize("sample", [s for s in all_samples() if s.name.startswith("workflow/")], ids=lambda s: s.name)
def test_lone_surrogates_in_every_string_of_a_body_keep_it(client: Client, inspector: Inspector, sample: Any) -> None:
    def spoil(value: Any) -> Any:
        if isinstance(value, str):
            return value + "\udc00"
        if isinstance(value, dict):
            return {k: spoil(v) for k, v in value.items()}
        if isinstance(value, list):
            return [spoil(v) for v in value]
        return value

    raw = json.dumps(spoil(copy.deepcopy(sample.body()))).encode()
    post_twice(client, inspector, sample.path, raw)  # ids included: stored, or quarantined by the model


# ---------------------------------------------------------------------------------------------- numbers and times


@pytest.mark.parametrize(
    "timestamp",
    [
        "1e400",  # parses to infinity
        "1e300",
        "Infinity",
        "-Infinity",
        "NaN",
        '"12345678901234567890123"',  # a 23-digit digit string
        "12345678901234567890123",
        "-1e17",
        "9" * 400,
        '"0001-01-01T00:00:00+01:00"',  # year 0 once moved to UTC
        '"9999-12-31T23:59:59-01:00"',  # year 10000 once moved to UTC
        '"1e400"',
    ],
)
def test_a_time_out_of_range_is_left_out_and_the_event_filed_at_receipt(
    client: Client, inspector: Inspector, timestamp: str
) -> None:
    raw = contact_text(f"c-time-{abs(hash(timestamp))}", timestamp=timestamp)
    answer, event_id = post_twice(client, inspector, DIALER, raw)
    assert answer.status_code == 200
    event = inspector.event(event_id)
    assert event is not None and event["time_source"] == "received"
    assert event["event_time"] == event["received_at"]


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("call id of 400 digits", contact_text("unused", callid="9" * 400)),
        ("call id 1e400", contact_text("unused", callid="1e400")),
        ("hangupReason 1e400", contact_text("c-hangup-1e400", hangupReason='"1e400"')),
        ("hangupReason number 1e400", contact_text("c-hangup-num", hangupReason="1e400")),
        ("hangupReason of 400 digits", contact_text("c-hangup-400", hangupReason="9" * 400)),
    ],
)
def test_numbers_past_float_and_int_limits_keep_the_body(
    client: Client, inspector: Inspector, name: str, raw: bytes
) -> None:
    # Stored (the model reads what it can), or quarantined with the reason: never 5xx, never lost.
    post_twice(client, inspector, DIALER, raw)


# ---------------------------------------------------------------------------------------------- DynamoDB's limits


def test_a_call_id_past_the_key_limit_is_keyed_by_its_digest(client: Client, inspector: Inspector) -> None:
    call_id = "c" * 3_000  # a key holds 2,048 bytes (1,024 as a sort key)
    raw = contact_text(call_id, recLink='"https://example.com/r.wav"')
    answer, event_id = post_twice(client, inspector, DIALER, raw)
    assert answer.status_code == 200
    store = inspector.store()
    event = inspector.event(event_id)
    assert event is not None and event["call_id"] == call_id and event["entity_id"] == call_id
    assert event["pk"].startswith("CALL#" + DIGEST_PREFIX) and len(event["pk"]) < 100
    state = store.get_state("CALL", call_id)  # the lookup by the id finds it through the same digest
    assert state is not None and state["call_id"] == call_id and state["status"] == "HANGUP"
    assert [e["event_id"] for e in store.entity_events("CALL", call_id)] == [event_id]


def test_a_field_of_450_000_characters_is_left_out_of_the_items(client: Client, inspector: Inspector) -> None:
    call_id = "c-huge-state"
    raw = contact_text(call_id, state=json.dumps("x" * 450_000), note=json.dumps("y" * 450_000))
    answer, event_id = post_twice(client, inspector, DIALER, raw)  # items hold 400 KB
    assert answer.status_code == 200
    store = inspector.store()
    event = inspector.event(event_id)
    assert event is not None
    assert event["left_out"] == ["status"] and "status" not in event
    assert inspector.archived(event)["body"].encode() == raw  # the body: whole, in the envelope
    state = store.get_state("CALL", call_id)
    assert state is not None and state["last_event_id"] == event_id


def test_a_call_id_of_450_000_characters_is_stored(client: Client, inspector: Inspector) -> None:
    call_id = "k" * 450_000
    answer, event_id = post_twice(client, inspector, DIALER, contact_text(call_id))
    assert answer.status_code == 200
    store = inspector.store()
    event = inspector.event(event_id)
    assert event is not None and "entity_id" in event["left_out"] and "call_id" in event["left_out"]
    state = store.get_state("CALL", call_id)
    assert state is not None and state["last_event_id"] == event_id
