"""The recordings copier against servers that misbehave on purpose (issue 11): a real local recordings
server (tools/simulator/recordings_server.py: slow drip, an HTML page instead of the file, another port), the local
stack from template.yaml on moto over HTTP, and RecordingsFunction fed as Lambda's SQS mapping does."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airudder_ingest.recordings.copier import RecordingsConsumer, RecordingsSettings
from tests.support.recordings_testkit import RecordingsLab
from tools.local_aws.sqs_poller import lambda_record
from tools.simulator.recordings_server import RecordingsServer, expected_sha256

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
# The copy deadline of the consumers built here. A dripping server needs 10x longer: whether the copy was
# cut midway is read from the server (its answer left unfinished), never from a stopwatch.
DEADLINE_SECONDS = 2.0
# The lab's read timeout (1 s) is 4x the drip's gaps; a busy machine could stretch one gap past it and
# turn "out of time" into a read timeout. Here only the deadline may cut.
PATIENT_READS = {"RECORDING_READ_TIMEOUT_SECONDS": 30.0}


@pytest.fixture(scope="module")
def lab() -> Iterator[RecordingsLab]:
    with RecordingsLab() as running:
        yield running


@pytest.fixture(autouse=True)
def _empty_queues(lab: RecordingsLab) -> Iterator[None]:
    yield
    lab.clear(lab.queue_url)
    lab.clear(lab.dlq_url)


def new_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def receive_one(lab: RecordingsLab) -> tuple[dict[str, Any], dict[str, Any]]:
    """The next message of the recordings queue, and the Lambda event carrying it."""
    sqs = lab.client("sqs")
    for _ in range(10):
        messages = sqs.receive_message(QueueUrl=lab.queue_url, AttributeNames=["All"], WaitTimeSeconds=1).get(
            "Messages", []
        )
        if messages:
            message = messages[0]
            return message, {"Records": [lambda_record(message, lab.resource("RecordingsQueue", "Arn"), "us-east-1")]}
    raise AssertionError("no message on the recordings queue")


def settle(lab: RecordingsLab, message: dict[str, Any], answer: dict[str, Any]) -> None:
    """What Lambda's SQS mapping does after the handler: delete the message unless it was reported failed
    (then the handler made it visible again)."""
    if {"itemIdentifier": message["MessageId"]} not in answer["batchItemFailures"]:
        lab.client("sqs").delete_message(QueueUrl=lab.queue_url, ReceiptHandle=message["ReceiptHandle"])


def consumer_with(**settings: Any) -> RecordingsConsumer:
    """The function's consumer (settings from the running stack's environment), some settings changed."""
    values = RecordingsSettings.from_env().model_dump(by_alias=True)
    values.update(settings)
    return RecordingsConsumer.from_settings(RecordingsSettings.model_validate(values))


class LambdaContext:
    """A Lambda context with `seconds` left after RECORDING_DEADLINE_MARGIN_SECONDS (20)."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + 20 + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self._end - time.monotonic()) * 1000)


# ---------------------------------------------------------------------------------------------- the deadline


@pytest.mark.parametrize(
    "drip",
    [
        {"drip": 0.25, "size": 120},  # the body, one byte every 0.25 s: 30 s
        {"drip_headers": 0.25},  # the status line and headers, likewise: about 20 s
    ],
    ids=["body", "headers"],
)
def test_a_dripping_server_is_cut_at_the_copy_deadline_and_the_copy_retried(
    lab: RecordingsLab, drip: dict[str, Any]
) -> None:
    call = new_id("drip")
    size = drip.pop("size", 5_000)
    lab.send(call, lab.server.url(call, size=size, slow=1, **drip))  # only the first request drips
    message, event = receive_one(lab)
    consumer = consumer_with(RECORDING_COPY_TIMEOUT_SECONDS=DEADLINE_SECONDS, **PATIENT_READS)

    answer = consumer.handle(event, None)
    settle(lab, message, answer)

    [cut] = lab.server.answers(call)
    assert not cut.complete  # the copy gave up while the server was still dripping
    assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    state = lab.recording(call)
    assert state["recording_status"] == "retrying"
    assert "out of time" in state["recording_error"]
    assert lab.versions(f"recordings/2024/05/01/{call}.") == []
    assert lab.client("s3").list_multipart_uploads(Bucket=lab.bucket).get("Uploads", []) == []

    # The next delivery (the function as deployed) finds the server well and archives the recording.
    batches = lab.drain()

    assert [b.failed for b in batches] == [[]]
    state = lab.recording(call)
    assert (state["recording_status"], state["recording_attempts"]) == ("archived", 2)
    assert lab.object_sha256(state["recording_s3_key"]) == (expected_sha256(call, size), size)
    assert lab.server.hits(call) == 2


def test_a_dripping_server_is_cut_when_the_invocation_runs_out_of_time(lab: RecordingsLab) -> None:
    call = new_id("drip-lambda")
    lab.send(call, lab.server.url(call, size=120, drip=0.25))
    message, event = receive_one(lab)
    consumer = consumer_with(**PATIENT_READS)  # the function's settings: a copy may take 600 s

    answer = consumer.handle(event, LambdaContext(DEADLINE_SECONDS))
    settle(lab, message, answer)

    [cut] = lab.server.answers(call)
    assert not cut.complete  # the copy gave up while the server was still dripping
    assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert "out of time" in lab.recording(call)["recording_error"]


# ---------------------------------------------------------------------------------------------- case, no call


def post_call_notification(lab: RecordingsLab, **changes: Any) -> None:
    body = json.loads((REPO / "events/workflow/call/completed.json").read_text())
    delivery = copy.deepcopy(body)
    delivery.pop("call_id")
    delivery.update(changes)
    answer = requests.post(lab.running.url("/webhooks/workflow/call", with_token=True), json=delivery, timeout=30)
    assert answer.status_code == 200, answer.text


def test_a_call_naming_only_its_case_has_its_recording_archived_under_the_case(lab: RecordingsLab) -> None:
    case = new_id("case")
    first, second = new_id("rec1"), new_id("rec2")
    post_call_notification(
        lab, case_id=case, recLink=lab.server.url(first, size=40_000), end_time="2025-04-15 09:31:12"
    )
    # Another call of the same case (no call id either): a recording of its own.
    post_call_notification(
        lab, case_id=case, recLink=lab.server.url(second, size=30_000), end_time="2025-04-16 10:00:00"
    )

    batches = lab.drain()

    assert all(b.failed == [] for b in batches)
    assert lab.queue_counts(lab.dlq_url) == (0, 0)
    events = {e["recording_url"].split("/audio/")[1].split(".")[0]: e for e in lab.store.case_events(case)}
    assert set(events) == {first, second}
    for seed, size in ((first, 40_000), (second, 30_000)):
        event = lab.event_recording(events[seed]["event_id"])
        assert event["recording_status"] == "archived"
        key = event["recording_s3_key"]
        assert key.startswith("recordings/2025/04/1") and key.endswith(f"/case/{case}/{event['event_id']}.wav")
        assert lab.object_sha256(key) == (expected_sha256(seed, size), size)
        assert lab.head(key)["Metadata"]["entity"] == f"CASE%23{case}"

    # AIRUDDER delivers the first notification again: the recording is not fetched again.
    post_call_notification(
        lab, case_id=case, recLink=lab.server.url(first, size=40_000), end_time="2025-04-15 09:31:12"
    )
    lab.drain()
    assert lab.server.hits(first) == 1
    assert len([v for v in lab.versions("recordings/") if f"/case/{case}/" in v["Key"]]) == 2


# ---------------------------------------------------------------------------------------------- content type


@pytest.mark.parametrize("served_as", ["audio/wav", "text/html"])
def test_a_web_page_served_as_the_recording_is_not_archived(lab: RecordingsLab, served_as: str) -> None:
    call = new_id("html")
    lab.send(call, lab.server.url(call, size=3_000, format="html", type=served_as))

    batches = lab.drain()

    assert [(b.received, b.failed) for b in batches] == [(1, [])]  # decided: not retried, not dead-lettered
    state = lab.recording(call)
    assert state["recording_status"] == "failed"
    assert state["recording_error"] == f"not a recording: the server sent an HTML page ({served_as})"
    assert "recording_s3_key" not in state
    assert lab.versions(f"recordings/2024/05/01/{call}.") == []
    assert lab.queue_counts(lab.dlq_url) == (0, 0)


@pytest.mark.parametrize(
    ("ext", "options", "archived_as"),
    [
        ("wav", {"type": "text/html"}, ("wav", "audio/wav")),  # a real recording under a wrong header
        ("bin", {"format": "mp3", "type": "application/octet-stream"}, ("mp3", "audio/mpeg")),
        ("wav", {"format": "ogg", "type": "audio/wav"}, ("ogg", "audio/ogg")),  # the bytes decide
        ("bin", {"format": "raw", "type": "text/html"}, ("bin", "application/octet-stream")),  # unknown bytes
        ("bin", {"format": "raw", "type": "audio/x-wav"}, ("wav", "audio/wav")),  # ... on the audio allow-list
    ],
)
def test_the_archived_content_type_is_an_audio_type_or_octet_stream(
    lab: RecordingsLab, ext: str, options: dict[str, str], archived_as: tuple[str, str]
) -> None:
    call = new_id("typed")
    lab.send(call, lab.server.url(call, ext=ext, size=20_000, **options))

    lab.drain()

    state = lab.recording(call)
    assert state["recording_status"] == "archived"
    assert state["recording_s3_key"] == f"recordings/2024/05/01/{call}.{archived_as[0]}"
    assert state["recording_content_type"] == archived_as[1]
    assert lab.head(state["recording_s3_key"])["ContentType"] == archived_as[1]
    fmt = options.get("format", "wav")
    assert lab.object_sha256(state["recording_s3_key"]) == (expected_sha256(call, 20_000, fmt), 20_000)


# ---------------------------------------------------------------------------------------------- ports


def test_another_port_of_an_allowed_host_is_not_fetched(lab: RecordingsLab) -> None:
    call = new_id("port")
    with RecordingsServer() as other:  # 127.0.0.1 too, on a port the allow-list does not name
        lab.send(call, other.url(call, size=10_000))
        moved = new_id("port-redirect")
        lab.send(moved, lab.server.url(moved, redirect=other.url(moved, size=10_000)))

        batches = lab.drain()

        assert all(b.failed == [] for b in batches)
        assert other.hits() == 0
    state = lab.recording(call)
    assert state["recording_status"] == "refused"
    assert state["recording_error"] == f"port {other.port} of 127.0.0.1 is not on the allow-list"
    assert lab.recording(moved)["recording_status"] == "refused"
    assert lab.recording(moved)["recording_error"].startswith("redirect refused: port")
