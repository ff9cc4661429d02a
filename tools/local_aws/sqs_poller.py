"""What Lambda's SQS event source mapping does, for the local stack: poll a queue, invoke a function
with a real SQS event, delete what succeeded.

    poller = SqsPoller(sqs, queue_url, invoke=lambda event: stack.invoke("RecordingsFunction", event))
    poller.poll_once()           # one batch, in this thread
    poller.drain(timeout=30)     # batches until the queue is empty (in flight included)
    with poller:                 # or in a background thread until stopped
        ...

Like the mapping: a function error fails the whole batch; with ReportBatchItemFailures the messages named
in batchItemFailures fail (and the whole batch if an identifier is missing or unknown); failed messages
are left alone, so they come back when their visibility timeout ends (which the function may change)
and the queue's redrive policy moves them to the dead-letter queue after maxReceiveCount receives.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.background import Poller

log = logging.getLogger("tools.local_aws.sqs_poller")


@dataclass
class BatchOutcome:
    received: int = 0
    succeeded: list[str] = field(default_factory=list)  # message ids
    failed: list[str] = field(default_factory=list)
    result: Any = None
    error: str | None = None


def lambda_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A received message (boto3 shape) as a record of Lambda's SQS event."""
    attributes: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        binary = value.get("BinaryValue")
        attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary,
            "stringListValues": list(value.get("StringListValues") or []),
            "binaryListValues": [
                base64.b64encode(item).decode() if isinstance(item, bytes) else item
                for item in value.get("BinaryListValues") or []
            ],
            "dataType": value.get("DataType"),
        }
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_ids(result: Any, batch_ids: list[str], report_failures: bool) -> list[str] | None:
    """Message ids the function reported as failed; None when the answer fails the whole batch."""
    if not report_failures or result is None:
        return []
    if not isinstance(result, Mapping):
        return []  # an answer of another shape is a success, as in Lambda
    items = result.get("batchItemFailures")
    if items is None:
        return []
    if not isinstance(items, list):
        return None
    failed: list[str] = []
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not identifier or identifier not in batch_ids:
            return None
        failed.append(str(identifier))
    return failed


class SqsPoller(Poller):
    """Polls one queue and hands batches to `invoke` (one at a time, as with MaximumConcurrency 1)."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        invoke: Callable[[dict[str, Any]], Any],
        *,
        queue_arn: str | None = None,
        region: str | None = None,
        batch_size: int = 10,
        wait_seconds: int = 1,
        report_batch_item_failures: bool = True,
        name: str = "sqs-poller",
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._invoke = invoke
        self.queue_arn = (
            queue_arn
            or sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )
        self.region = region or self.queue_arn.split(":")[3]
        self.batch_size = max(1, min(batch_size, 10))
        self.wait_seconds = wait_seconds
        self.report_batch_item_failures = report_batch_item_failures
        super().__init__(name)
        self.batches: list[BatchOutcome] = []  # every batch that held messages, oldest first
        self._lock = threading.Lock()  # one batch at a time, from the thread or from drain()

    # ------------------------------------------------------------------ one batch

    def poll_once(self, wait_seconds: int | None = None) -> BatchOutcome:
        with self._lock:
            messages = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds,
            ).get("Messages", [])
            if not messages:
                return BatchOutcome()
            outcome = self._run(messages)
            self.batches.append(outcome)
            return outcome

    def _run(self, messages: list[dict[str, Any]]) -> BatchOutcome:
        ids = [m["MessageId"] for m in messages]
        event = {"Records": [lambda_record(m, self.queue_arn, self.region) for m in messages]}
        outcome = BatchOutcome(received=len(messages))
        try:
            outcome.result = self._invoke(event)
        except Exception as exc:
            log.warning("%s: the function failed on a batch of %d: %s", self.name, len(messages), type(exc).__name__)
            outcome.error = f"{type(exc).__name__}: {exc}"
            outcome.failed = ids
            return outcome
        failed = failed_ids(outcome.result, ids, self.report_batch_item_failures)
        if failed is None:
            log.warning("%s: batchItemFailures names unknown messages: the whole batch failed", self.name)
            outcome.failed = ids
            return outcome
        outcome.failed = failed
        outcome.succeeded = [i for i in ids if i not in failed]
        done = [m for m in messages if m["MessageId"] in outcome.succeeded]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[start : start + 10])
            ]
            answer = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for problem in answer.get("Failed", []):
                log.warning("%s: could not delete a message: %s", self.name, problem.get("Code"))
        return outcome

    # ------------------------------------------------------------------ until empty

    def queue_depth(self) -> tuple[int, int]:
        """(visible, in flight) messages of the queue."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def drain(self, timeout: float = 60.0) -> list[BatchOutcome]:
        """Poll until the queue holds nothing, visible or in flight (a message delayed by a visibility
        timeout is waited for). Returns the batches it ran; TimeoutError when the queue never empties."""
        deadline = time.monotonic() + timeout
        ran: list[BatchOutcome] = []
        while True:
            outcome = self.poll_once(wait_seconds=0)
            if outcome.received:
                ran.append(outcome)
                continue
            if self.queue_depth() == (0, 0):
                return ran
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: the queue still holds messages after {timeout} s")
            time.sleep(0.05)

    # ------------------------------------------------------------------ in the background (Poller.start)

    def _poll(self) -> bool:
        # The receive long-polls (wait_seconds), so an empty poll needs no pause of its own.
        return bool(self.poll_once().received)
