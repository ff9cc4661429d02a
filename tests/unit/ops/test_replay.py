"""Replay (replay.py) in-process: deliveries stored by the webhook edge, read back from the archive's lines
or from the table, written again through the recorder; outcomes stored / repaired / unchanged / invalid."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

from airudder_ingest.base.settings import IngestSettings
from airudder_ingest.edge.auth import TokenVerifier
from airudder_ingest.edge.webhook import WebhookEdge
from airudder_ingest.record.recorder import EventRecorder
from airudder_ingest.storage.archive import (
    RAW_PREFIX,
    ArchiveReader,
    ClaimChecks,
    archive_line,
    encode_jsonl_gz,
    partition_prefix,
    unpack_envelope,
)
from airudder_ingest.storage.store import STATE_SK, EventStore
from airudder_ops.replay import Delivery, Replayer

from ..aws_support import BUCKET, TABLE, TOKEN

DAY = "2022-11-21"


def recorder(aws: dict[str, Any], **overrides: Any) -> EventRecorder:
    settings = IngestSettings.model_validate(
        {"EVENTS_TABLE": TABLE, "ARCHIVE_BUCKET": BUCKET, "WEBHOOK_TOKEN_SECRET": "unused", **overrides}
    )
    return EventRecorder(settings, EventStore(TABLE, aws["dynamodb"]), ClaimChecks(BUCKET, aws["s3"]), None)


def deliver(aws: dict[str, Any], body: Any, *, raw: bytes | None = None, **overrides: Any) -> dict[str, Any]:
    """Post a body through the webhook edge (the real ingest path); its answer."""
    settings = IngestSettings.model_validate(
        {"EVENTS_TABLE": TABLE, "ARCHIVE_BUCKET": BUCKET, "WEBHOOK_TOKEN_SECRET": "unused", **overrides}
    )
    verifier = TokenVerifier("unused", fetch=lambda name, age, force: json.dumps({"current": TOKEN}))
    edge = WebhookEdge(settings, recorder(aws, **overrides), verifier)
    route = "/webhooks/workflow/dialer"
    return edge.handle(
        {
            "version": "2.0",
            "routeKey": f"POST {route}",
            "rawPath": route,
            "queryStringParameters": {"token": TOKEN},
            "headers": {"content-type": "application/json"},
            "pathParameters": {},
            "body": raw.decode() if raw is not None else json.dumps(body),
            "isBase64Encoded": False,
            "requestContext": {"requestId": "req-1", "timeEpoch": int(time.time() * 1000)},
        }
    )


def contact(call_id: str = "c1", state: str = "HANGUP", **extra: Any) -> dict[str, Any]:
    body = {"callid": call_id, "state": state, "phoneNumber": "+6281234567890", "timestamp": "1668998317236"}
    return {"workflow_id": "wf1", "nodetask_id": "nt1", "pds": {"type": "ContactStatus", "body": body}, **extra}


def replayer(aws: dict[str, Any], *, dry_run: bool = False) -> Replayer:
    return Replayer(recorder(aws), ArchiveReader(BUCKET, aws["s3"]), dry_run=dry_run)


def archive(aws: dict[str, Any], store: EventStore) -> None:
    """Every event of the table as the archiver writes it (one object of the day)."""
    lines = [archive_line(i, unpack_envelope(i["envelope"])) for i in store.scan_events(DAY, DAY)]
    key = partition_prefix(RAW_PREFIX, "workflow.dialer", DAY) + "batch.jsonl.gz"
    ArchiveReader(BUCKET, aws["s3"]).put_object(key, encode_jsonl_gz(lines))


def items(aws: dict[str, Any]) -> list[dict[str, Any]]:
    found = aws["dynamodb"].scan(TableName=TABLE)["Items"]
    return sorted(found, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def test_a_day_replayed_again_changes_nothing_and_restores_a_lost_event(aws: dict[str, Any]) -> None:
    store = EventStore(TABLE, aws["dynamodb"])
    event_id = deliver(aws, contact())["headers"]["x-event-id"]
    assert deliver(aws, contact("c2"))["statusCode"] == 200
    archive(aws, store)
    before = items(aws)

    results = [replayer(aws).replay(d) for d in replayer(aws).day_deliveries(DAY)]
    assert [r.outcome for r in results] == ["unchanged", "unchanged"]
    assert results[0].origin.startswith(f"raw/type=workflow.dialer/dt={DAY}/batch.jsonl.gz#")
    assert items(aws) == before

    lost = store.find_event(event_id)
    assert lost is not None
    aws["dynamodb"].delete_item(TableName=TABLE, Key={"pk": {"S": lost["pk"]}, "sk": {"S": lost["sk"]}})
    dry = [replayer(aws, dry_run=True).replay(d).outcome for d in replayer(aws).day_deliveries(DAY)]
    assert sorted(dry) == ["unchanged", "would store"] and store.find_event(event_id) is None

    again = {r.event_id: r.outcome for r in map(replayer(aws).replay, replayer(aws).day_deliveries(DAY))}
    assert again[event_id] == "stored"
    restored = store.find_event(event_id)
    assert restored is not None and (restored["pk"], restored["sk"]) == (lost["pk"], lost["sk"])
    assert restored["in_archive"] is True  # its line is archived: the archiver leaves it out
    assert unpack_envelope(restored["envelope"])["body"] == unpack_envelope(lost["envelope"])["body"]
    assert {r.outcome for r in map(replayer(aws).replay, replayer(aws).day_deliveries(DAY))} == {"unchanged"}


def test_a_lost_state_is_repaired_and_a_different_reading_reported(aws: dict[str, Any]) -> None:
    store = EventStore(TABLE, aws["dynamodb"])
    event_id = deliver(aws, contact())["headers"]["x-event-id"]
    stored = store.find_event(event_id)
    assert stored is not None
    state = store.get_state("CALL", "c1")
    aws["dynamodb"].delete_item(TableName=TABLE, Key={"pk": {"S": stored["pk"]}, "sk": {"S": STATE_SK}})
    # As an older model would have read it: the replay reports the difference and rewrites nothing.
    aws["dynamodb"].update_item(
        TableName=TABLE,
        Key={"pk": {"S": stored["pk"]}, "sk": {"S": stored["sk"]}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "OLD"}},
    )

    (dry,) = [replayer(aws, dry_run=True).replay(d) for d in replayer(aws).call_deliveries("c1")]
    assert (dry.outcome, dry.differs) == ("would repair", ("status",)) and store.get_state("CALL", "c1") is None
    (done,) = [replayer(aws).replay(d) for d in replayer(aws).call_deliveries("c1")]
    assert (done.outcome, done.differs, done.origin) == (
        "repaired",
        ("status",),
        f"table {stored['pk']} {stored['sk']}",
    )
    repaired = store.get_state("CALL", "c1")
    assert state is not None and repaired is not None
    assert repaired["last_event_id"] == state["last_event_id"] and repaired["status"] == "OLD"  # as stored
    assert store.find_event(event_id)["status"] == "OLD"  # type: ignore[index]
    (again,) = [replayer(aws).replay(d) for d in replayer(aws).call_deliveries("c1")]
    assert again.outcome == "unchanged"


def test_a_quarantined_body_now_accepted_is_stored_once(aws: dict[str, Any]) -> None:
    store = EventStore(TABLE, aws["dynamodb"])
    answer = deliver(aws, contact("c9"), MAX_BODY_BYTES="100")
    assert answer["statusCode"] == 413
    quarantine_id = json.loads(answer["body"])["quarantine_id"]
    delivery = replayer(aws).quarantine_delivery(quarantine_id)
    assert delivery is not None and delivery.quarantined and not delivery.from_archive

    result = replayer(aws).replay(delivery)

    assert result.outcome == "stored" and result.entity == "CALL#c9"
    event = store.find_event(str(result.event_id))
    assert event is not None and event["source"] == "replay" and "in_archive" not in event
    quarantine = store.get_quarantine(quarantine_id)
    assert quarantine is not None and quarantine["replayed_as"] == result.event_id
    assert event["received_at"] == quarantine["received_at"]
    before = items(aws)
    assert replayer(aws).replay(delivery).outcome == "unchanged"
    assert items(aws) == before


def test_a_body_still_not_json_is_invalid_and_writes_nothing(aws: dict[str, Any]) -> None:
    answer = deliver(aws, None, raw=b'{"pds": ')
    assert answer["statusCode"] == 400
    before = items(aws)
    delivery = replayer(aws).quarantine_delivery(json.loads(answer["body"])["quarantine_id"])
    assert delivery is not None

    result = replayer(aws).replay(delivery)

    assert result.outcome == "invalid" and "not valid JSON" in result.detail
    assert items(aws) == before
    assert replayer(aws).quarantine_delivery("0" * 32) is None
    unknown = Delivery("x", {"webhook_type": "no.such", "received_at": "2025-01-01T00:00:00.000Z"})
    assert replayer(aws).replay(unknown).outcome == "invalid"


def test_an_envelope_in_a_claim_check_is_read_from_s3(aws: dict[str, Any]) -> None:
    # Incompressible, so that the packed envelope is over what an item holds.
    notes = base64.b64encode(os.urandom(300_000)).decode()
    event_id = deliver(aws, contact("c-big", notes=notes))["headers"]["x-event-id"]
    stored = EventStore(TABLE, aws["dynamodb"]).find_event(event_id)
    assert stored is not None and "envelope" not in stored and stored["envelope_key"]

    (delivery,) = replayer(aws).call_deliveries("c-big")

    assert json.loads(delivery.line["body"])["notes"] == notes
    assert replayer(aws).replay(delivery).outcome == "unchanged"
