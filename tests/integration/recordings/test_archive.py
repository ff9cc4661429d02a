"""Recordings copied into S3: the local stack from template.yaml (moto over HTTP), RecordingsFunction fed
by a poller doing what Lambda's SQS event source mapping does, and a real local recordings server."""

from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from airudder_ingest.recordings.copier import RecordingsConsumer, presign_client, presigned_recording_url
from tests.support.recordings_testkit import RecordingsLab
from tools.local_aws.sqs_poller import lambda_record
from tools.simulator.recordings_server import expected_sha256

pytestmark = pytest.mark.integration

MB = 1_000_000
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def lab() -> Iterator[RecordingsLab]:
    # With the fault proxy between the function and moto, so that AWS calls can be made to fail.
    with RecordingsLab(with_fault_proxy=True) as running:
        yield running


@pytest.fixture(autouse=True)
def _empty_queues(lab: RecordingsLab) -> Iterator[None]:
    yield
    # Whatever a test left behind must not reach the next one.
    if lab.running.faults is not None:
        lab.running.faults.clear()
    lab.clear(lab.queue_url)
    lab.clear(lab.dlq_url)


def new_call(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def test_a_recording_is_archived_under_the_call_and_its_day(lab: RecordingsLab) -> None:
    call = new_call("normal")
    lab.send(call, lab.server.url(call, size=1 * MB), event_time="2024-05-01T23:59:59.000+07:00")

    batches = lab.drain()

    assert [b.failed for b in batches] == [[]]
    key = f"recordings/2024/05/01/{call}.wav"  # the event's day in UTC (16:59:59Z)
    sha, size = lab.object_sha256(key)
    assert (sha, size) == (expected_sha256(call, 1 * MB), 1 * MB)
    head = lab.head(key)
    assert head["ContentType"] == "audio/wav"
    assert head["Metadata"]["call-id"] == call
    assert head["Metadata"]["source-host"] == "127.0.0.1"
    state = lab.recording(call)
    assert state["recording_status"] == "archived"
    assert state["recording_s3_key"] == key
    assert state["recording_s3_bucket"] == lab.bucket
    assert state["recording_size"] == 1 * MB
    assert state["recording_sha256"] == sha
    assert state["recording_content_type"] == "audio/wav"
    assert lab.server.hits(call) == 1


def test_a_large_recording_goes_up_in_parts_and_keeps_its_checksum(lab: RecordingsLab) -> None:
    call = new_call("multipart")
    size = 20 * MB + 123  # three parts of the default 8 MiB
    lab.send(call, lab.server.url(call, size=size, chunked=True))

    lab.drain()

    key = f"recordings/2024/05/01/{call}.wav"
    assert lab.object_sha256(key) == (expected_sha256(call, size), size)
    assert lab.head(key)["ETag"].strip('"').endswith("-3")  # a multipart object of 3 parts
    assert lab.recording(call)["recording_sha256"] == expected_sha256(call, size)


def test_the_content_type_comes_from_the_response_and_the_extension_from_the_link(lab: RecordingsLab) -> None:
    call = new_call("mp3")
    lab.send(call, lab.server.url(call, ext="mp3", size=50_000, type="audio/mpeg; charset=binary"))
    call_bin = new_call("typed")
    lab.send(call_bin, lab.server.url(call_bin, ext="bin", size=50_000, type="audio/ogg"))

    lab.drain()

    assert lab.recording(call)["recording_s3_key"].endswith(f"/{call}.mp3")
    assert lab.recording(call)["recording_content_type"] == "audio/mpeg"
    assert lab.recording(call_bin)["recording_s3_key"].endswith(f"/{call_bin}.ogg")
    assert lab.head(lab.recording(call_bin)["recording_s3_key"])["ContentType"] == "audio/ogg"


def test_a_server_failing_twice_is_retried_and_the_recording_archived_once(lab: RecordingsLab) -> None:
    call = new_call("flaky")
    lab.send(call, lab.server.url(call, size=2 * MB, fail=2))

    batches = lab.drain()

    assert [(b.received, len(b.failed)) for b in batches] == [(1, 1), (1, 1), (1, 0)]  # 3 deliveries
    assert lab.server.hits(call) == 3
    state = lab.recording(call)
    assert state["recording_status"] == "archived"
    assert state["recording_attempts"] == 3
    assert "recording_error" not in state and "recording_http_status" not in state
    assert len(lab.versions(f"recordings/2024/05/01/{call}.")) == 1
    assert lab.queue_counts(lab.dlq_url) == (0, 0)


def test_a_slow_server_times_out_and_the_next_attempt_succeeds(lab: RecordingsLab) -> None:
    call = new_call("slow")
    # The first answer comes 3 s late; the stack's read timeout is 1 s.
    lab.send(call, lab.server.url(call, size=300_000, delay=3, slow=1))
    stalled = new_call("stalled")
    # The first transfer stops for 3 s halfway through the body.
    lab.send(stalled, lab.server.url(stalled, size=3 * MB, stall=3, slow=1))

    batches = lab.drain()

    assert sum(len(b.failed) for b in batches) == 2
    for each in (call, stalled):
        assert lab.server.hits(each) == 2
        state = lab.recording(each)
        assert state["recording_status"] == "archived"
        assert state["recording_attempts"] == 2
        assert lab.object_sha256(state["recording_s3_key"])[0] == state["recording_sha256"]
    assert lab.object_sha256(lab.recording(stalled)["recording_s3_key"])[0] == expected_sha256(stalled, 3 * MB)


def test_a_transfer_cut_short_is_not_archived_but_retried(lab: RecordingsLab) -> None:
    call = new_call("truncated")
    # Cut at half of 20 MB: after the first 8 MiB part went up, so a multipart upload is open.
    lab.send(call, lab.server.url(call, size=20 * MB, truncate=True, slow=1))

    batches = lab.drain()

    assert [len(b.failed) for b in batches] == [1, 0]
    state = lab.recording(call)
    assert state["recording_status"] == "archived"
    assert lab.object_sha256(state["recording_s3_key"]) == (expected_sha256(call, 20 * MB), 20 * MB)
    assert len(lab.versions(f"recordings/2024/05/01/{call}.")) == 1
    # The first attempt's multipart upload was aborted, not left behind.
    assert lab.client("s3").list_multipart_uploads(Bucket=lab.bucket).get("Uploads", []) == []


@pytest.mark.parametrize(
    ("status", "recording_status"), [(404, "missing"), (403, "link_expired"), (410, "link_expired")]
)
def test_a_dead_link_is_marked_and_not_retried(lab: RecordingsLab, status: int, recording_status: str) -> None:
    call = new_call(f"dead{status}")
    lab.send(call, lab.server.url(call, status=status))

    batches = lab.drain()

    assert [(b.received, b.failed) for b in batches] == [(1, [])]  # the message is not failed
    assert lab.server.hits(call) == 1
    state = lab.recording(call)
    assert state["recording_status"] == recording_status
    assert state["recording_http_status"] == status
    assert "recording_s3_key" not in state
    assert lab.versions(f"recordings/2024/05/01/{call}.") == []
    assert lab.queue_counts(lab.dlq_url) == (0, 0)


@pytest.mark.parametrize(
    "make_url",
    [
        lambda server, call: server.url(call, host="localhost"),  # same server, a host not on the list
        lambda server, call: server.url(call).replace("http://", "http://user:pw@"),
        lambda server, call: server.url(call).replace("http://", "ftp://"),
        lambda server, call: server.url(call).replace("127.0.0.1", "127.0.0.1.nip.io"),
        lambda server, call: "http://169.254.169.254/latest/meta-data/",
    ],
    ids=["other-host", "userinfo", "scheme", "lookalike", "metadata"],
)
def test_a_link_off_the_allow_list_is_refused_without_a_request(lab: RecordingsLab, make_url: object) -> None:
    call = new_call("refused")
    lab.send(call, make_url(lab.server, call))  # type: ignore[operator]

    batches = lab.drain()

    assert [(b.received, b.failed) for b in batches] == [(1, [])]
    assert lab.server.hits(call) == 0
    state = lab.recording(call)
    assert state["recording_status"] == "refused"
    assert state["recording_error"]


def test_a_redirect_off_the_allow_list_is_not_followed(lab: RecordingsLab) -> None:
    call = new_call("redirect")
    target = lab.server.url(f"{call}-target", host="localhost")
    lab.send(call, lab.server.url(call, redirect=target))

    lab.drain()

    assert lab.server.hits(call) == 1
    assert lab.server.hits(f"{call}-target") == 0
    state = lab.recording(call)
    assert state["recording_status"] == "refused"
    assert state["recording_error"].startswith("redirect refused")


def test_a_redirect_on_the_allow_list_is_followed(lab: RecordingsLab) -> None:
    call = new_call("moved")
    target = lab.server.url(f"{call}-target", size=70_000)
    lab.send(call, lab.server.url(call, redirect=target, redirect_status=307))

    lab.drain()

    state = lab.recording(call)
    assert state["recording_status"] == "archived"
    assert state["recording_sha256"] == expected_sha256(f"{call}-target", 70_000)
    assert (lab.server.hits(call), lab.server.hits(f"{call}-target")) == (1, 1)


def test_a_duplicate_message_makes_one_object_and_no_second_download(lab: RecordingsLab) -> None:
    call = new_call("dup")
    url = lab.server.url(call, size=3 * MB)
    lab.send(call, url, event_id="first-event")
    lab.drain()
    lab.send(call, url, event_id="second-event")
    # Another event of the same call, another day: still the same one recording.
    lab.send(call, url, event_id="third-event", event_time="2024-05-03T08:00:00Z")

    batches = lab.drain()

    assert sum(b.received for b in batches) == 2 and all(b.failed == [] for b in batches)
    assert lab.server.hits(call) == 1
    assert len(lab.versions("recordings/")) == len({v["Key"] for v in lab.versions("recordings/")})
    assert [v["Key"] for v in lab.versions("recordings/") if call in v["Key"]] == [f"recordings/2024/05/01/{call}.wav"]


def test_a_batch_fails_only_its_failed_messages(lab: RecordingsLab) -> None:
    good, bad = new_call("good"), new_call("bad")
    lab.send(good, lab.server.url(good, size=10_000))
    lab.send(bad, lab.server.url(bad, size=10_000, fail=1))

    first = lab.poller.poll_once(wait_seconds=1)
    while first.received < 2:  # SQS may hand out fewer messages than asked for
        more = lab.poller.poll_once(wait_seconds=1)
        first.received += more.received
        first.failed += more.failed
        first.succeeded += more.succeeded

    assert len(first.failed) == 1 and len(first.succeeded) == 1
    assert lab.recording(good)["recording_status"] == "archived"
    assert lab.recording(bad)["recording_status"] == "retrying"
    lab.drain()
    assert lab.recording(bad)["recording_status"] == "archived"


def test_a_recording_that_keeps_failing_goes_to_the_dead_letter_queue_and_is_marked(lab: RecordingsLab) -> None:
    call = new_call("down")
    lab.send(call, lab.server.url(call, size=10_000, fail=99, fail_status=502))

    batches = lab.drain()

    assert len(batches) == 5  # maxReceiveCount
    assert lab.server.hits(call) == 5
    assert lab.queue_counts(lab.dlq_url) == (1, 0)
    state = lab.recording(call)
    assert state["recording_status"] == "failed"
    assert state["recording_http_status"] == 502
    assert state["recording_attempts"] == 5
    assert "attempt 5 of 5" in state["recording_error"]


def test_a_message_that_is_not_a_recording_request_ends_in_the_dead_letter_queue(lab: RecordingsLab) -> None:
    lab.send_raw("not json")
    lab.send_raw({"url": "https://recordings.airudder.com/a.wav"})  # no call id

    batches = lab.drain()

    # Failed at once each time (no backoff), then moved by the queue's redrive policy.
    assert sum(len(b.failed) for b in batches) == 2 * 5
    assert lab.queue_counts(lab.dlq_url) == (2, 0)


def test_a_failure_never_overwrites_an_archived_recording(lab: RecordingsLab) -> None:
    call = new_call("kept")
    lab.send(call, lab.server.url(call, size=10_000))
    lab.drain()
    archived = lab.recording(call)

    # A late failure of a concurrent copy of the same call.
    assert lab.store.update_recording(call, unless_status="archived", status="failed", error="late") is False

    assert lab.recording(call)["recording_status"] == "archived"
    assert lab.recording(call)["recording_s3_key"] == archived["recording_s3_key"]


def test_a_webhook_with_a_recording_link_ends_with_the_recording_archived(lab: RecordingsLab) -> None:
    body = json.loads((REPO / "events/workflow/call/completed.json").read_text())
    delivery = copy.deepcopy(body)
    call = new_call("webhook")
    delivery["call_id"] = call
    delivery["recLink"] = lab.server.url(call, size=500_000)

    answer = requests.post(lab.running.url("/webhooks/workflow/call", with_token=True), json=delivery, timeout=30)
    assert answer.status_code == 200, answer.text
    lab.drain()

    state = lab.recording(call)
    assert state["recording_status"] == "archived"
    assert state["recording_sha256"] == expected_sha256(call, 500_000)
    # The state item is the call's: the event's fields and the recording's side by side.
    assert state["call_id"] == call and state["recording_url"] == delivery["recLink"]
    assert state["recording_s3_key"].startswith("recordings/2025/04/15/")


def test_a_presigned_link_serves_the_archived_recording(lab: RecordingsLab) -> None:
    call = new_call("presigned")
    lab.send(call, lab.server.url(call, size=200_000))
    lab.drain()
    s3 = presign_client()  # from the environment: the local stack's endpoint while it runs

    url = presigned_recording_url(lab.store, s3, lab.bucket, call, expires_in=300)

    assert url is not None
    assert "X-Amz-Expires=300" in url
    downloaded = requests.get(url, timeout=30)
    assert downloaded.status_code == 200
    assert hashlib.sha256(downloaded.content).hexdigest() == expected_sha256(call, 200_000)
    assert presigned_recording_url(lab.store, s3, lab.bucket, new_call("unknown")) is None
    with pytest.raises(ValueError):
        presigned_recording_url(lab.store, s3, lab.bucket, call, expires_in=8 * 24 * 3600)


def test_429_is_retried_after_the_time_the_server_asks_for(lab: RecordingsLab) -> None:
    call = new_call("throttled")
    lab.send(call, lab.server.url(call, size=10_000, fail=1, fail_status=429, retry_after=2))

    started = time.monotonic()
    batches = lab.drain()

    assert [len(b.failed) for b in batches] == [1, 0]
    assert time.monotonic() - started >= 2  # the message stayed invisible for Retry-After
    assert lab.recording(call)["recording_status"] == "archived"


def test_another_client_error_fails_the_recording_without_retrying(lab: RecordingsLab) -> None:
    call = new_call("bad-request")
    lab.send(call, lab.server.url(call, status=400))

    batches = lab.drain()

    assert [(b.received, b.failed) for b in batches] == [(1, [])]
    state = lab.recording(call)
    assert (state["recording_status"], state["recording_http_status"]) == ("failed", 400)


def test_a_redirect_loop_is_given_up(lab: RecordingsLab) -> None:
    call = new_call("loop")
    lab.send(call, lab.server.url(call, redirect="self"))  # a relative redirect to itself

    lab.drain()

    assert lab.server.hits(call) == 4  # the link and 3 redirects (RECORDING_MAX_REDIRECTS)
    state = lab.recording(call)
    assert state["recording_status"] == "failed"
    assert "redirects" in state["recording_error"]


class ShortContext:
    """A Lambda context with little time left: RECORDING_DEADLINE_MARGIN_SECONDS (20) + 1.5 s."""

    def __init__(self) -> None:
        self._end = time.monotonic() + 21.5

    def get_remaining_time_in_millis(self) -> int:
        return int((self._end - time.monotonic()) * 1000)


def test_a_copy_that_would_outlast_the_invocation_is_abandoned_and_retried(lab: RecordingsLab) -> None:
    call = new_call("deadline")
    # 64 MB at 2 MB/s: 32 s, far more than the 1.5 s left (so much more that no busy machine turns
    # "abandoned midway" into "downloaded whole").
    size = 64 * MB
    lab.send(call, lab.server.url(call, size=size, rate=2 * MB))
    sqs = lab.client("sqs")
    messages = sqs.receive_message(QueueUrl=lab.queue_url, AttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    event = {"Records": [lambda_record(m, lab.resource("RecordingsQueue", "Arn"), "us-east-1") for m in messages]}
    consumer = RecordingsConsumer.from_env()  # the function's settings, from the running stack's environment

    answer = consumer.handle(event, ShortContext())

    [sent] = lab.server.body_bytes_sent(call)  # the server's side, once the abandoned download has ended
    assert 0 < sent < size  # given up midway, not after the whole file
    assert answer == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    state = lab.recording(call)
    assert state["recording_status"] == "retrying"
    assert "out of time" in state["recording_error"]
    assert lab.versions(f"recordings/2024/05/01/{call}.") == []
    assert lab.client("s3").list_multipart_uploads(Bucket=lab.bucket).get("Uploads", []) == []
    lab.clear(lab.queue_url)


def test_a_failed_state_write_is_retried_and_the_recording_archived(lab: RecordingsLab) -> None:
    faults = lab.running.faults
    assert faults is not None
    call = new_call("ddb-down")
    lab.send(call, lab.server.url(call, size=10_000))
    # The "archived" write fails on all 3 tries of the SDK (AWS_MAX_ATTEMPTS); the next write works.
    faults.fail("dynamodb", "UpdateItem", times=3)

    batches = lab.drain()

    assert [len(b.failed) for b in batches] == [1, 0]
    state = lab.recording(call)
    assert state["recording_status"] == "archived"
    assert state["recording_attempts"] == 2
    assert lab.object_sha256(state["recording_s3_key"])[0] == expected_sha256(call, 10_000)
