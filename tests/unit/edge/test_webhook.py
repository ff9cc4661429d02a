"""The webhook edge and the event recorder, in process (moto's in-process mock): every answer the edge
gives and what each leaves behind. The same cases run over HTTP against a moto server in tests/integration."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airudder_ingest.storage.archive import unpack_envelope
from airudder_ingest.storage.store import EventStore

from ..aws_support import BUCKET, TABLE, TOKEN, items, objects
from .edge_support import api_event, make_edge


def contact(call_id: str = "c1", state: str = "RINGING", ts: str = "1668998317236", rec: str = "") -> dict[str, Any]:
    return {
        "workflow_id": "wf1",
        "nodetask_id": "nt1",
        "pds": {
            "type": "ContactStatus",
            "body": {
                "taskId": "t1",
                "callid": call_id,
                "state": state,
                "phoneNumber": "+6281234567890",
                "timestamp": ts,
                "recLink": rec,
            },
        },
    }


def envelopes(aws: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(pk, unpacked envelope) of every item that holds one: events and quarantined deliveries."""
    return [(i["pk"]["S"], unpack_envelope(i["envelope"]["B"])) for i in items(aws) if "envelope" in i]


def event_items(aws: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in items(aws) if i["sk"]["S"].startswith("EV#")]


def queued(aws: dict[str, Any]) -> list[dict[str, Any]]:
    answer = aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def test_a_delivery_is_archived_stored_and_answered_200(aws: dict[str, Any]) -> None:
    # Given the edge and a contact-status push with a recording link
    edge = make_edge(aws)
    body = contact(rec="https://rec.airudder.com/c1.wav")
    # When it is delivered
    answer = edge.handle(api_event(body))
    # Then it is answered 200 {} and leaves one event holding the envelope, one state, one queued link,
    # and no S3 object (the archiver writes the archive from the table's stream)
    assert (answer["statusCode"], answer["body"]) == (200, "{}")
    assert answer["headers"]["x-ingest-outcome"] == "stored"
    event_id = answer["headers"]["x-event-id"]
    assert objects(aws) == []
    ((pk, archived),) = envelopes(aws)
    assert pk == "CALL#c1"
    (event,) = event_items(aws)
    assert event["sk"]["S"] == f"EV#2022-11-21T02:38:37.236Z#{event_id}"
    assert json.loads(archived["body"]) == body
    assert archived["query"] == {}  # the token is never archived
    assert archived["headers"]["user-agent"] == "Airudder"
    assert len(items(aws)) == 2
    state = edge.recorder.store.get_state("CALL", "c1")
    assert state is not None
    assert (state["status"], state["phone"], state["last_event_id"]) == ("RINGING", "+6281234567890", event_id)
    assert [m["url"] for m in queued(aws)] == ["https://rec.airudder.com/c1.wav"]


def test_a_redelivery_is_a_duplicate_and_stores_nothing_new(aws: dict[str, Any]) -> None:
    edge = make_edge(aws)
    first = edge.handle(api_event(contact()))
    # Same content, keys in another order and pretty-printed
    again = edge.handle(api_event(json.dumps(dict(reversed(contact().items())), indent=3)))
    assert again["statusCode"] == 200
    assert again["headers"]["x-ingest-outcome"] == "duplicate"
    assert again["headers"]["x-event-id"] == first["headers"]["x-event-id"]
    assert len(event_items(aws)) == 1


def test_an_older_event_never_overwrites_a_newer_state(aws: dict[str, Any]) -> None:
    edge = make_edge(aws)
    edge.handle(api_event(contact(state="HANGUP", ts="1668998400000")))
    edge.handle(api_event(contact(state="RINGING", ts="1668998300000")))  # arrives late
    state = edge.recorder.store.get_state("CALL", "c1")
    assert state is not None and state["status"] == "HANGUP"
    assert len(event_items(aws)) == 2  # both events are kept


def test_no_token_or_a_wrong_one_stores_nothing(aws: dict[str, Any]) -> None:
    edge = make_edge(aws)
    for token in (None, "wrong", TOKEN + "x"):
        answer = edge.handle(api_event(contact(), token=token))
        assert answer["statusCode"] == 401
        assert json.loads(answer["body"])["error"] == "unauthorized"
    assert items(aws) == [] and objects(aws) == [] and queued(aws) == []


def test_the_token_may_come_in_a_header(aws: dict[str, Any]) -> None:
    event = api_event(contact(), token=None)
    event["headers"]["x-webhook-token"] = TOKEN
    assert make_edge(aws).handle(event)["statusCode"] == 200


def test_malformed_json_is_quarantined_with_400(aws: dict[str, Any]) -> None:
    answer = make_edge(aws).handle(api_event('{"workflow_id": "wf1",'))
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 400
    assert body["error"] == "invalid_payload" and "not valid JSON" in body["message"]
    ((pk, archived),) = envelopes(aws)
    assert pk == f"Q#{body['quarantine_id']}" and archived["body"] == '{"workflow_id": "wf1",'
    (item,) = items(aws)
    assert item["webhook_type"]["S"] == "workflow.dialer" and "not valid JSON" in item["reason"]["S"]


def test_a_body_missing_what_the_model_expects_is_stored_and_names_the_fact(aws: dict[str, Any]) -> None:
    # A contact push without `pds.body` (so without its call id) was quarantined when the model required it.
    answer = make_edge(aws).handle(api_event({"workflow_id": "wf1", "pds": {"type": "ContactStatus"}}))
    assert (answer["statusCode"], answer["body"]) == (200, "{}")
    event = EventStore(TABLE, aws["dynamodb"]).find_event(answer["headers"]["x-event-id"])
    assert event is not None and event["unreadable"] == ["call_id"]
    # Filed under the next identifier it carries: its workflow.
    assert (event["entity_kind"], event["entity_id"], event["workflow_id"]) == ("WORKFLOW", "wf1", "wf1")
    assert len(event_items(aws)) == 1 and not any(i["pk"]["S"].startswith("Q#") for i in items(aws))


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_quarantined_with_400(aws: dict[str, Any], body: str) -> None:
    answer = make_edge(aws).handle(api_event(body))
    reply = json.loads(answer["body"])
    assert answer["statusCode"] == 400 and "not an object" in reply["message"]
    (item,) = items(aws)
    assert item["pk"]["S"] == f"Q#{reply['quarantine_id']}"


@pytest.mark.parametrize(
    ("timestamp", "hangup"),
    [("1e400", '"abc"'), ("NaN", "Infinity"), ('"soon"', "1e400"), ("-1e17", "true"), ("9" * 400, '{"a": 1}')],
)
def test_values_no_field_can_take_are_kept_in_the_body_and_named(
    aws: dict[str, Any], timestamp: str, hangup: str
) -> None:
    # Raw JSON text: bare 1e400 and NaN become inf/nan in Python, and no field may choke on them.
    raw = (
        json.dumps(contact())
        .replace('"1668998317236"', timestamp)
        .replace('"recLink": ""', f'"recLink": "", "hangupReason": {hangup}')
    )
    answer = make_edge(aws).handle(api_event(raw))
    assert (answer["statusCode"], answer["body"]) == (200, "{}"), answer["body"]
    event = EventStore(TABLE, aws["dynamodb"]).find_event(answer["headers"]["x-event-id"])
    assert event is not None
    assert (event["entity_kind"], event["entity_id"]) == ("CALL", "c1")
    assert "event_time" in event["unreadable"] and event["time_source"] == "received"
    assert unpack_envelope(event["envelope"])["body"] == raw


def test_an_unreadable_delivery_counts_in_the_unreadable_metric(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aws_lambda_powertools import Metrics

    from airudder_ingest.edge import webhook as http_edge

    monkeypatch.setattr(http_edge, "metrics", Metrics(namespace="UnitTest", service="unit"))
    edge = make_edge(aws)
    edge.handle(api_event(contact()))  # read in full: no data point
    body = {"workflow_id": "wf1", "pds": {"type": "ContactStatus", "body": {"state": "x"}}}
    edge.handle(api_event(body))
    edge.handle(api_event(body))  # a redelivery is the same event: counted once
    points = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"Unreadable"' in line]
    assert len(points) == 1
    (point,) = points
    assert (point["webhook_type"], point["service"], point["Unreadable"]) == ("workflow.dialer", "unit", [1.0])
    (directive,) = point["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "UnitTest" and sorted(directive["Dimensions"][0]) == ["service", "webhook_type"]


def test_a_body_over_the_limit_is_quarantined_with_413(aws: dict[str, Any]) -> None:
    answer = make_edge(aws, MAX_BODY_BYTES=100).handle(api_event(contact()))
    assert answer["statusCode"] == 413
    (item,) = items(aws)
    assert item["pk"]["S"].startswith("Q#") and item["http_status"]["N"] == "413"


def test_an_unknown_path_value_is_404_and_stores_nothing(aws: dict[str, Any]) -> None:
    answer = make_edge(aws).handle(api_event(contact(), route="/webhooks/nowhere"))
    assert answer["statusCode"] == 404
    assert items(aws) == [] and objects(aws) == []


def test_the_catch_all_keeps_any_json(aws: dict[str, Any]) -> None:
    edge = make_edge(aws)
    answer = edge.handle(
        api_event([1, 2, 3], route="/webhooks/{proxy+}", raw_path="/webhooks/x/y", path_params={"proxy": "x/y"})
    )
    assert answer["statusCode"] == 200
    event = edge.recorder.store.find_event(answer["headers"]["x-event-id"])
    assert event is not None and event["webhook_type"] == "unknown" and event["route"] == "/webhooks/{proxy+}"
    assert len(items(aws)) == 1  # an unknown delivery has no entity state


def test_an_event_write_failure_answers_503_and_writes_nothing_else(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    edge = make_edge(aws)

    def broken(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "PutItem")

    monkeypatch.setattr(edge.recorder.store._ddb, "put_item", broken)
    answer = edge.handle(api_event(contact(rec="https://rec.airudder.com/c1.wav")))
    assert answer["statusCode"] == 503
    assert items(aws) == [] and queued(aws) == []
    monkeypatch.undo()
    assert edge.handle(api_event(contact()))["headers"]["x-ingest-outcome"] == "stored"


def test_an_envelope_too_large_for_its_item_goes_to_s3_first(aws: dict[str, Any]) -> None:
    # Given a body whose packed envelope does not fit an item (random text does not compress)
    import base64
    import os

    noise = base64.b64encode(os.urandom(300_000)).decode()
    body = {**contact(), "notes": noise}
    answer = make_edge(aws).handle(api_event(body))
    # Then it is stored: the item points to a claim check holding the packed envelope
    assert answer["statusCode"] == 200, answer["body"]
    (event,) = event_items(aws)
    assert "envelope" not in event
    key = event["envelope_key"]["S"]
    assert objects(aws) == [key] and key.startswith("claims/")
    packed = aws["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert json.loads(unpack_envelope(packed)["body"])["notes"] == noise


def test_a_state_write_failure_is_repaired_by_the_retry(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the event write succeeds but the state write fails
    edge = make_edge(aws)

    def broken(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}, "UpdateItem")

    monkeypatch.setattr(edge.recorder.store._ddb, "update_item", broken)
    assert edge.handle(api_event(contact(state="ANSWERED")))["statusCode"] == 503
    assert edge.recorder.store.get_state("CALL", "c1") is None
    # When AIRUDDER retries
    monkeypatch.undo()
    answer = edge.handle(api_event(contact(state="ANSWERED")))
    # Then the event is a duplicate, and the state is there after all
    assert answer["headers"]["x-ingest-outcome"] == "duplicate"
    state = edge.recorder.store.get_state("CALL", "c1")
    assert state is not None and state["status"] == "ANSWERED"


def test_a_redelivery_without_a_payload_time_keeps_its_first_time(aws: dict[str, Any]) -> None:
    # Status changes carry no time: a late redelivery of an old one must not beat a newer status
    edge = make_edge(aws)
    route = "/webhooks/workflow/status-changed"
    running = {"workflow_id": "w1", "status": "running", "actions": []}
    received = int(time.time() * 1000)
    edge.handle(api_event(running, route=route, time_epoch=received))
    finished = {"workflow_id": "w1", "status": "finished", "actions": []}
    edge.handle(api_event(finished, route=route, time_epoch=received + 10))
    late = api_event(running, route=route, time_epoch=received + 20)
    assert edge.handle(late)["headers"]["x-ingest-outcome"] == "duplicate"
    state = edge.recorder.store.get_state("WORKFLOW", "w1")
    assert state is not None and state["status"] == "finished"
