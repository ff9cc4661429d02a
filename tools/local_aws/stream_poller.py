"""What Lambda's DynamoDB stream event source mapping does, for the local stack: read the table's stream
(DescribeStream, GetShardIterator, GetRecords over HTTP, as moto serves them), apply the mapping's
FilterCriteria, invoke the function with a real stream event, checkpoint what succeeded.

    poller = stack.stream_poller("FanoutFunction")
    poller.drain()               # batches until every shard is read to its end, in this thread
    with poller: ...             # or in a background thread until stopped

Each poller keeps its own checkpoint per shard, like one event source mapping: several functions can read
the same stream independently. Like the mapping: records the filters leave out are skipped (and
checkpointed) without an invocation; a function error fails the whole batch; with ReportBatchItemFailures
the batch is retried from the lowest sequence number named in batchItemFailures (records before it are
checkpointed); a failing batch is retried up to MaximumRetryAttempts times (halved each time with
BisectBatchOnFunctionError), then its description goes to the OnFailure destination and the shard moves on.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tools.background import Poller

log = logging.getLogger("tools.local_aws.stream_poller")


@dataclass
class StreamBatch:
    shard_id: str
    records: int = 0
    sequence_numbers: list[str] = field(default_factory=list)
    failed_from: str | None = None  # first sequence number that failed (None: all succeeded)
    result: Any = None
    error: str | None = None
    sent_to_on_failure: bool = False


def _json_safe(value: Any) -> Any:
    """boto3's typed attribute values as Lambda's JSON event carries them (binary as base64)."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record (boto3 shape) as a record of Lambda's DynamoDB stream event."""
    stream = dict(record.get("dynamodb") or {})
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = int(created.timestamp())
    out = {k: _json_safe(v) for k, v in record.items() if k != "dynamodb"}
    out["dynamodb"] = _json_safe(stream)
    out["eventSourceARN"] = stream_arn
    return out


# ---------------------------------------------------------------------------------------- filters


def matches(pattern: Any, value: Any, present: bool = True) -> bool:
    """Lambda's event filtering (the EventBridge pattern syntax, the subset Lambda documents): nested
    objects, lists of accepted values, and {"exists"}, {"prefix"}, {"anything-but"}, {"numeric"}."""
    if isinstance(pattern, Mapping):
        if not present or not isinstance(value, Mapping):
            return False
        return all(matches(sub, value.get(key), key in value) for key, sub in pattern.items())
    if isinstance(pattern, list):
        values = value if isinstance(value, list) else [value]
        return any(_accepts(option, v, present) for option in pattern for v in values) or (
            not values and any(_accepts(option, None, False) for option in pattern)
        )
    return present and pattern == value


def _accepts(option: Any, value: Any, present: bool) -> bool:
    if not isinstance(option, Mapping):
        return present and option == value
    if "exists" in option:
        return bool(option["exists"]) == (present and value is not None)
    if not present:
        return False
    if "prefix" in option:
        return isinstance(value, str) and value.startswith(str(option["prefix"]))
    if "anything-but" in option:
        refused = option["anything-but"]
        return value not in (refused if isinstance(refused, list) else [refused])
    if "numeric" in option:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return False
        rules = option["numeric"]
        checks = {"<": number.__lt__, "<=": number.__le__, "=": number.__eq__, ">": number.__gt__, ">=": number.__ge__}
        return all(checks[rules[i]](float(rules[i + 1])) for i in range(0, len(rules), 2))
    return False


def filter_patterns(filter_criteria: Mapping[str, Any] | None) -> list[Any]:
    return [json.loads(f["Pattern"]) for f in (filter_criteria or {}).get("Filters") or [] if f.get("Pattern")]


# ---------------------------------------------------------------------------------------- the poller


class StreamPoller(Poller):
    """Polls every shard of one stream for one function (one at a time, in shard order)."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        *,
        batch_size: int = 100,
        starting_position: str = "TRIM_HORIZON",
        filters: Sequence[Any] = (),
        report_batch_item_failures: bool = False,
        max_retry_attempts: int = -1,
        bisect: bool = False,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        name: str = "stream-poller",
    ) -> None:
        self._streams = streams
        self.stream_arn = stream_arn
        self._invoke = invoke
        self.batch_size = max(1, min(int(batch_size), 1000))  # GetRecords returns at most 1,000
        self.starting_position = starting_position
        self.filters = list(filters)
        self.report_batch_item_failures = report_batch_item_failures
        # -1: retry until the records expire (Lambda's default); locally that means "for ever".
        self.max_retry_attempts = int(max_retry_attempts)
        self.bisect = bisect
        self.on_failure = on_failure
        super().__init__(name)
        self.batches: list[StreamBatch] = []  # every invocation, oldest first
        self.filtered_out = 0
        self._checkpoints: dict[str, str | None] = {}  # shard -> last sequence number done
        self._retries: dict[str, int] = {}  # shard -> retries of the batch at its checkpoint
        self._limits: dict[str, int] = {}  # shard -> batch size after bisecting
        self._lock = threading.Lock()
        self._positioned: set[str] = set()

    # ------------------------------------------------------------------ reading

    def _shards(self) -> list[str]:
        shards: list[str] = []
        request: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self._streams.describe_stream(**request)["StreamDescription"]
            shards += [shard["ShardId"] for shard in description.get("Shards") or []]
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            request["ExclusiveStartShardId"] = last

    def _read(self, shard_id: str, limit: int) -> list[dict[str, Any]]:
        if shard_id not in self._positioned:
            self._positioned.add(shard_id)
            if self.starting_position == "LATEST" and self._checkpoints.get(shard_id) is None:
                self._skip_to_end(shard_id)
        return self._read_after(shard_id, self._checkpoints.get(shard_id), limit)

    def _skip_to_end(self, shard_id: str) -> None:
        """LATEST: start after whatever the shard holds when the poller first looks at it."""
        while True:
            records = self._read_after(shard_id, self._checkpoints.get(shard_id), 1000)
            if not records:
                return
            self._checkpoints[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]

    def _read_after(self, shard_id: str, checkpoint: str | None, limit: int) -> list[dict[str, Any]]:
        args: dict[str, Any] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": checkpoint}
            if checkpoint is not None
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        answer = self._streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard_id, **args)
        iterator = answer["ShardIterator"]
        return list(self._streams.get_records(ShardIterator=iterator, Limit=limit).get("Records") or [])

    # ------------------------------------------------------------------ one pass

    def poll_once(self) -> list[StreamBatch]:
        """One batch per shard (at most); returns the invocations made."""
        ran: list[StreamBatch] = []
        with self._lock:
            for shard_id in self._shards():
                while True:  # records the filters drop do not count as a batch: read on past them
                    limit = self._limits.get(shard_id, self.batch_size)
                    records = self._read(shard_id, limit)
                    if not records:
                        break
                    kept = [r for r in records if not self.filters or any(matches(p, r) for p in self.filters)]
                    if not kept:
                        self.filtered_out += len(records)
                        self._checkpoints[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
                        continue
                    # Dropped records never reach the function; the checkpoint may pass them.
                    self.filtered_out += len(records) - len(kept)
                    ran.append(self._run(shard_id, kept, records))
                    break
        self.batches.extend(ran)
        return ran

    def _run(self, shard_id: str, batch: list[dict[str, Any]], read: list[dict[str, Any]]) -> StreamBatch:
        sequence = [r["dynamodb"]["SequenceNumber"] for r in batch]
        outcome = StreamBatch(shard_id, len(batch), sequence)
        event = {"Records": [lambda_record(r, self.stream_arn) for r in batch]}
        failed_from: str | None = None
        try:
            outcome.result = self._invoke(event)
        except Exception as exc:
            log.warning("%s: the function failed on a batch of %d: %s", self.name, len(batch), type(exc).__name__)
            outcome.error = f"{type(exc).__name__}: {exc}"
            failed_from = sequence[0]
        else:
            failed_from = self._reported_failure(outcome.result, sequence)
        outcome.failed_from = failed_from
        if failed_from is None:
            self._checkpoints[shard_id] = read[-1]["dynamodb"]["SequenceNumber"]
            self._retries.pop(shard_id, None)
            self._limits.pop(shard_id, None)
            return outcome
        index = sequence.index(failed_from)
        if index > 0:  # what came before the failed record is done
            self._checkpoints[shard_id] = sequence[index - 1]
            self._retries.pop(shard_id, None)
        retries = self._retries.get(shard_id, 0)
        if self.max_retry_attempts < 0 or retries < self.max_retry_attempts:
            self._retries[shard_id] = retries + 1
            if self.bisect and outcome.error is not None and len(batch) - index > 1:  # function errors only
                self._limits[shard_id] = max(1, (len(batch) - index) // 2)
            return outcome
        # Retries spent: describe the batch to the on-failure destination and move past it.
        failed = batch[index:]
        if self.on_failure is not None:
            self.on_failure(self._failure_message(shard_id, failed, retries))
            outcome.sent_to_on_failure = True
        self._checkpoints[shard_id] = failed[-1]["dynamodb"]["SequenceNumber"]
        self._retries.pop(shard_id, None)
        self._limits.pop(shard_id, None)
        return outcome

    def _reported_failure(self, result: Any, sequence: list[str]) -> str | None:
        if not self.report_batch_item_failures or not isinstance(result, Mapping):
            return None
        items = result.get("batchItemFailures")
        if not items:
            return None
        named = [str(item.get("itemIdentifier")) for item in items if isinstance(item, Mapping)]
        if not named or any(n not in sequence for n in named):
            return sequence[0]  # an unknown identifier fails the whole batch, as in Lambda
        return min(named, key=sequence.index)

    def _failure_message(self, shard_id: str, failed: list[dict[str, Any]], retries: int) -> dict[str, Any]:
        """The shape Lambda sends to a stream mapping's on-failure destination."""
        first = failed[0]["dynamodb"]
        created = first.get("ApproximateCreationDateTime")
        return {
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": retries + 1},
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": failed[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": created.isoformat() if isinstance(created, datetime) else None,
                "batchSize": len(failed),
                "streamArn": self.stream_arn,
            },
        }

    # ------------------------------------------------------------------ until read to the end

    def drain(self, timeout: float = 60.0) -> list[StreamBatch]:
        """Poll until a pass over every shard finds nothing new. Returns the invocations it made;
        TimeoutError when batches keep failing past ``timeout``."""
        deadline = time.monotonic() + timeout
        ran: list[StreamBatch] = []
        while True:
            batches = self.poll_once()
            if not batches:
                return ran
            ran += batches
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: the stream still has records to process after {timeout} s")

    # ------------------------------------------------------------------ in the background (Poller.start)

    idle_seconds = 0.5  # GetRecords does not wait: pause after a poll that found nothing

    def _poll(self) -> bool:
        return bool(self.poll_once())
