"""Concurrency, failing AWS calls, ordering and token rotation, over HTTP against a moto server."""

from __future__ import annotations

import base64
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tools.local_aws.stack import LocalStack

from ..stack_support import Client, Inspector

pytestmark = pytest.mark.integration
DIALER = "/webhooks/workflow/dialer"


def contact(call_id: str, state: str, ts: int, rec: str = "") -> dict[str, Any]:
    return {
        "workflow_id": "wf-failures",
        "workflow_name": "drills",
        "nodetask_id": "nt-1",
        "nodetask_name": "PDS1",
        "pds": {
            "type": "ContactStatus",
            "body": {
                "taskId": "task-failures",
                "callid": call_id,
                "state": state,
                "phoneNumber": "+6281200000001",
                "timestamp": str(ts),
                "recLink": rec,
                "hangupReason": 12,
            },
        },
    }


def new_call() -> str:
    return uuid.uuid4().hex


def test_status_pushes_in_reverse_order_leave_the_newest_state(client: Client, inspector: Inspector) -> None:
    call = new_call()
    # Given three status pushes of one call, delivered newest first
    for state, ts in (("HANGUP", 1_700_000_030_000), ("ANSWERED", 1_700_000_020_000), ("RINGING", 1_700_000_010_000)):
        assert client.post(DIALER, contact(call, state, ts)).headers["x-ingest-outcome"] == "stored"
    # Then all three are events of the call, and its state is the newest
    store = inspector.store()
    state = store.get_state("CALL", call)
    assert state is not None and state["status"] == "HANGUP"
    history = list(store.entity_events("CALL", call))
    assert [e["status"] for e in history] == ["HANGUP", "ANSWERED", "RINGING"]  # newest first


def test_twenty_concurrent_identical_deliveries_store_one_event(client: Client, inspector: Inspector) -> None:
    call = new_call()
    body = contact(call, "HANGUP", 1_700_000_040_000)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: client.post(DIALER, body), range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    outcomes = sorted(a.headers["x-ingest-outcome"] for a in answers)
    assert outcomes == ["duplicate"] * 19 + ["stored"]
    assert len({a.headers["x-event-id"] for a in answers}) == 1
    assert len(list(inspector.store().entity_events("CALL", call))) == 1


def test_a_dynamodb_failure_answers_5xx_and_the_retry_completes_the_event(
    client: Client, inspector: Inspector, stack: LocalStack
) -> None:
    assert stack.faults is not None
    call = new_call()
    body = contact(call, "HANGUP", 1_700_000_050_000)
    # Given DynamoDB fails every write
    stack.faults.fail("dynamodb", "PutItem")
    try:
        answer = client.post(DIALER, body)
    finally:
        stack.faults.clear()
    # Then AIRUDDER is told to retry, and nothing half-done is visible as an event
    assert answer.status_code == 503 and answer.json()["error"] == "storage_unavailable"
    assert inspector.store().get_state("CALL", call) is None
    # When AIRUDDER retries a minute later
    retry = client.post(DIALER, body)
    # Then the event is stored, and its state with it
    assert retry.status_code == 200 and retry.headers["x-ingest-outcome"] == "stored"
    state = inspector.store().get_state("CALL", call)
    assert state is not None and state["status"] == "HANGUP"


def test_a_state_write_failure_is_completed_by_the_retry(
    client: Client, inspector: Inspector, stack: LocalStack
) -> None:
    assert stack.faults is not None
    call = new_call()
    body = contact(call, "ANSWERED", 1_700_000_060_000)
    stack.faults.fail("dynamodb", "UpdateItem")
    try:
        first = client.post(DIALER, body)
    finally:
        stack.faults.clear()
    assert first.status_code == 503
    retry = client.post(DIALER, body)
    assert retry.headers["x-ingest-outcome"] == "duplicate"  # the event was written the first time
    state = inspector.store().get_state("CALL", call)
    assert state is not None and state["status"] == "ANSWERED"


@pytest.mark.parametrize(
    ("service", "operation", "padding"), [("dynamodb", "PutItem", 0), ("s3", "PutObject", 300_000)]
)
def test_a_failing_first_write_answers_5xx_and_writes_nothing(
    client: Client, inspector: Inspector, stack: LocalStack, service: str, operation: str, padding: int
) -> None:
    # The event item, or for an envelope too large for an item (random text does not compress) the claim
    # check written to S3 before it.
    assert stack.faults is not None
    call = new_call()
    body = {**contact(call, "HANGUP", 1_700_000_070_000), "noise": base64.b64encode(os.urandom(padding)).decode()}
    items = inspector.item_count()
    stack.faults.fail(service, operation)
    try:
        answer = client.post(DIALER, body)
    finally:
        stack.faults.clear()
    assert answer.status_code == 503
    assert inspector.item_count() == items
    assert client.post(DIALER, body).headers["x-ingest-outcome"] == "stored"
    (event,) = inspector.store().entity_events("CALL", call)
    assert ("envelope_key" in event) == bool(padding)
    assert json.loads(inspector.archived(event)["body"]) == body


def test_aws_unreachable_answers_5xx(client: Client, stack: LocalStack) -> None:
    assert stack.faults is not None
    stack.faults.outage()
    try:
        answer = client.post(DIALER, contact(new_call(), "HANGUP", 1_700_000_080_000))
    finally:
        stack.faults.restore()
    assert answer.status_code in (500, 503)


def test_a_recording_queue_failure_is_repaired_by_the_retry(client: Client, stack: LocalStack) -> None:
    assert stack.faults is not None
    body = contact(new_call(), "HANGUP", 1_700_000_090_000, rec="https://recordings.airudder.com/r.wav")
    stack.faults.fail("sqs", "SendMessage")
    try:
        assert client.post(DIALER, body).status_code == 503
    finally:
        stack.faults.clear()
    stack.faults.reset_calls()
    assert client.post(DIALER, body).headers["x-ingest-outcome"] == "duplicate"
    assert stack.faults.count("sqs", "SendMessage") == 1  # the link is queued by the retry


def test_an_oversized_body_is_quarantined_with_413(client: Client, inspector: Inspector) -> None:
    body = contact(new_call(), "HANGUP", 1_700_000_100_000)
    body["padding"] = "x" * 1_100_000
    answer = client.post(DIALER, body)
    assert answer.status_code == 413
    quarantine_id = answer.json()["quarantine_id"]
    kept = inspector.store().get_quarantine(quarantine_id)
    assert kept is not None and kept["http_status"] == 413


def test_the_catch_all_keeps_a_callback_we_do_not_model(client: Client, inspector: Inspector) -> None:
    answer = client.post("/webhooks/some/future/callback", {"anything": [1, 2, 3]})
    assert answer.status_code == 200
    event = inspector.event(answer.headers["x-event-id"])
    assert event is not None and event["webhook_type"] == "unknown"
    assert json.loads(inspector.archived(event)["body"]) == {"anything": [1, 2, 3]}
    assert inspector.archived(event)["path"] == "/webhooks/some/future/callback"


def test_a_path_outside_webhooks_is_not_found(client: Client) -> None:
    assert client.post("/elsewhere", {}).status_code == 404


def test_rotation_accepts_the_previous_and_the_current_token(client: Client, stack: LocalStack) -> None:
    secrets = stack.boto3_client("secretsmanager")
    secret_id = stack.resources["WebhookTokenSecret"]["Ref"]
    old = stack.token
    secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"current": "rotated-token", "previous": old}))
    try:
        # The new token is accepted at once (a mismatch re-reads the secret), and the old one still is
        assert client.post(DIALER, contact(new_call(), "HANGUP", 1), token="rotated-token").status_code == 200
        assert client.post(DIALER, contact(new_call(), "HANGUP", 2), token=old).status_code == 200
    finally:
        secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"current": old}))
