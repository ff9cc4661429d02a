"""`make redrive` (ops/airudder_ops/redrive.py): dead-lettered recording messages go back to the recordings queue
and, once the cause is gone, the recording is archived."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airudder_ops import redrive
from tests.support.recordings_testkit import RecordingsLab
from tools.simulator.recordings_server import expected_sha256

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def lab() -> Iterator[RecordingsLab]:
    with RecordingsLab() as running:
        yield running


def dead_letter_one(lab: RecordingsLab) -> str:
    """A recording whose server fails exactly as often as the queue delivers: it ends in the DLQ."""
    call = f"redrive-{uuid.uuid4().hex[:10]}"
    lab.send(call, lab.server.url(call, size=100_000, fail=5))
    lab.drain()
    assert lab.queue_counts(lab.dlq_url) == (1, 0)
    assert lab.recording(call)["recording_status"] == "failed"
    return call


def test_redrive_moves_dead_letters_back_and_they_are_archived(lab: RecordingsLab) -> None:
    call = dead_letter_one(lab)

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = redrive.main(
            ["--queue-url", lab.queue_url, "--dlq-url", lab.dlq_url, "--endpoint-url", lab.running.moto_url]
        )

    assert code == 0
    assert "moved 1 message(s)" in printed.getvalue()
    assert lab.queue_counts(lab.dlq_url) == (0, 0)
    assert lab.queue_counts(lab.queue_url) == (1, 0)
    batches = lab.drain()
    assert [b.failed for b in batches] == [[]]
    state = lab.recording(call)
    assert state["recording_status"] == "archived"
    assert state["recording_attempts"] == 1  # a new message: every attempt is available again
    assert state["recording_sha256"] == expected_sha256(call, 100_000)


def test_redrive_finds_the_local_queues_by_itself(lab: RecordingsLab) -> None:
    call = dead_letter_one(lab)

    dry = subprocess.run(
        [sys.executable, "-m", "airudder_ops.redrive", "--endpoint-url", lab.running.moto_url, "--dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr
    assert "would move 1 message(s)" in dry.stdout
    assert lab.queue_counts(lab.dlq_url) == (1, 0)

    moved = subprocess.run(
        [sys.executable, "-m", "airudder_ops.redrive", "--endpoint-url", lab.running.moto_url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert moved.returncode == 0, moved.stderr
    # The queue's name: moto's CloudFormation gives its URL on sqs.<region>.amazonaws.com, a listing at the
    # endpoint gives it on the endpoint's host.
    assert f"/{lab.queue_url.rsplit('/', 1)[-1]}; " in moved.stdout.split(" to ", 1)[1]
    lab.drain()
    assert lab.recording(call)["recording_status"] == "archived"


def test_redrive_reads_the_queues_from_the_stack_outputs(lab: RecordingsLab) -> None:
    cloudformation = lab.client("cloudformation")
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "RecordingsQueueUrl": {"Value": lab.queue_url},
            "RecordingsDeadLetterQueueUrl": {"Value": lab.dlq_url},
        },
    }
    cloudformation.create_stack(StackName="deployed-recordings", TemplateBody=json.dumps(template))
    sqs = lab.client("sqs")
    sqs.send_message(
        QueueUrl=lab.dlq_url,
        MessageBody='{"call_id": "x"}',
        MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}},
    )

    with contextlib.redirect_stdout(io.StringIO()):
        code = redrive.main(
            ["--stack-name", "deployed-recordings"], clients={"cloudformation": cloudformation, "sqs": sqs}
        )

    assert code == 0
    moved = sqs.receive_message(QueueUrl=lab.queue_url, MessageAttributeNames=["All"]).get("Messages", [])
    assert [m["Body"] for m in moved] == ['{"call_id": "x"}']
    assert moved[0]["MessageAttributes"]["origin"]["StringValue"] == "test"
    sqs.delete_message(QueueUrl=lab.queue_url, ReceiptHandle=moved[0]["ReceiptHandle"])
