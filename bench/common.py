"""Pieces shared by the benchmarks: AWS call capture, DynamoDB item sizes, sample deliveries, stats."""

from __future__ import annotations

import base64
import contextlib
import io
import math
import statistics
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# The stdout the benchmark reports on, kept before any handler swaps sys.stdout for a log sink.
REPORT = sys.__stdout__ or sys.stdout


@contextlib.contextmanager
def function_output(sink: io.TextIOBase | None = None) -> Iterator[io.TextIOBase]:
    """sys.stdout swapped for a sink while handlers run here: their log lines and EMF metrics (which
    Lambda sends to CloudWatch) must not mix with the report. Modules imported meanwhile bind to it."""
    saved = sys.stdout
    sys.stdout = sink or LogSink()
    try:
        yield sys.stdout
    finally:
        sys.stdout = saved


class LogSink(io.TextIOBase):
    """Stands in for a function's stdout (CloudWatch Logs): counts what is written."""

    def __init__(self) -> None:
        self.chars = 0
        self.lines = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        self.lines += text.count("\n")
        return len(text)

    def writable(self) -> bool:
        return True


def say(line: str = "") -> None:
    REPORT.write(line + "\n")
    REPORT.flush()


# ---------------------------------------------------------------------------------------------- capture


@dataclass(frozen=True)
class CapturedCall:
    service: str  # botocore's service name: dynamodb, s3, sqs, secretsmanager
    operation: str  # PutItem, UpdateItem, PutObject ...
    params: dict[str, Any]


@dataclass
class Capture:
    """Records the parameters of every API call made by the clients it is attached to."""

    calls: list[CapturedCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, clients: Iterable[Any]) -> None:
        for client in clients:
            client.meta.events.register("provide-client-params", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        # A shallow copy: botocore swaps an S3 Body for a file object in its own dict later on.
        call = CapturedCall(model.service_model.service_name, model.name, dict(params))
        with self._lock:
            self.calls.append(call)

    def take(self) -> list[CapturedCall]:
        with self._lock:
            taken, self.calls = self.calls, []
        return taken


def renamed(call: CapturedCall, tag: str) -> CapturedCall:
    """The same request on keys of its own (event / state item, S3 object), so that a replay writes what
    the handler wrote, at the same cost, without colliding with it."""
    params = dict(call.params)
    if call.operation == "PutItem":
        params["Item"] = {**params["Item"], "pk": {"S": f"BARE#{tag}#{params['Item']['pk']['S']}"}}
    elif call.operation == "UpdateItem":
        params["Key"] = {**params["Key"], "pk": {"S": f"BARE#{tag}#{params['Key']['pk']['S']}"}}
    elif call.operation == "PutObject":
        params["Key"] = f"bare/{tag}/{params['Key']}"
    return CapturedCall(call.service, call.operation, params)


def replay(clients: Mapping[str, Any], calls: Iterable[CapturedCall]) -> None:
    from botocore import xform_name

    for call in calls:
        getattr(clients[call.service], xform_name(call.operation))(**call.params)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


def pipeline_clients() -> list[Any]:
    """The boto3 clients the deployed layer has created in this process (airudder_ingest.base.aws)."""
    module = sys.modules.get("airudder_ingest.base.aws")
    if module is None:
        raise RuntimeError("the handler has not been imported in this process yet")
    return list(module._clients.values())


# ---------------------------------------------------------------------------------------------- DynamoDB sizes
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
# Item size = sum over attributes of (UTF-8 name length + value size). Strings: UTF-8 bytes; binary: bytes;
# numbers: about 1 byte per 2 significant digits + 1; booleans and nulls: 1; lists and maps: 3 + their
# elements (+1 per element). An index entry is the projected attributes + the table's and the index's
# keys + 100 bytes. Writes are metered per 1 KB, rounded up.

INDEX_ENTRY_OVERHEAD = 100
WRITE_UNIT_BYTES = 1024


def value_size(value: Mapping[str, Any]) -> int:
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "B":
        return len(inner) if isinstance(inner, bytes | bytearray) else math.ceil(len(str(inner)) * 3 / 4)
    if kind == "N":
        digits = str(Decimal(str(inner)).normalize()).lstrip("-").replace(".", "")
        return math.ceil(len(digits.lstrip("0") or "0") / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: v}) for v in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]], only: Iterable[str] | None = None) -> int:
    names = set(item) if only is None else set(only) & set(item)
    return sum(len(name.encode()) + value_size(item[name]) for name in names)


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


@dataclass(frozen=True)
class IndexSpec:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY, INCLUDE
    included: tuple[str, ...] = ()


def table_indexes(description: Mapping[str, Any]) -> tuple[tuple[str, ...], list[IndexSpec]]:
    """(table key names, global secondary indexes) of a DescribeTable answer's Table."""
    table_keys = tuple(k["AttributeName"] for k in description["KeySchema"])
    specs = []
    for index in description.get("GlobalSecondaryIndexes") or []:
        projection = index.get("Projection") or {}
        specs.append(
            IndexSpec(
                index["IndexName"],
                tuple(k["AttributeName"] for k in index["KeySchema"]),
                projection.get("ProjectionType", "ALL"),
                tuple(projection.get("NonKeyAttributes") or ()),
            )
        )
    return table_keys, specs


def template_table(logical_id: str = "EventsTable") -> tuple[tuple[str, ...], list[IndexSpec]]:
    """(table key names, global secondary indexes) of the table as template.yaml declares it."""
    from tools.local_aws.template import load_template

    props = load_template(REPO_ROOT / "template.yaml")["Resources"][logical_id]["Properties"]
    return table_indexes(props)


def template_default(parameter: str) -> Any:
    """The default value of one of template.yaml's parameters."""
    from tools.local_aws.template import load_template

    return load_template(REPO_ROOT / "template.yaml")["Parameters"][parameter].get("Default")


def _projected(item: Mapping[str, Mapping[str, Any]], table_keys: Sequence[str], index: IndexSpec) -> set[str]:
    if index.projection == "ALL":
        return set(item)
    return {*table_keys, *index.keys, *(index.included if index.projection == "INCLUDE" else ())} & set(item)


def index_entry_size(item: Mapping[str, Mapping[str, Any]], table_keys: Sequence[str], index: IndexSpec) -> int | None:
    """Size of the item's entry in `index`, or None when the item lacks the index's keys (sparse)."""
    if any(key not in item for key in index.keys):
        return None
    return item_size(item, _projected(item, table_keys, index)) + INDEX_ENTRY_OVERHEAD


def index_write_units(
    before: Mapping[str, Mapping[str, Any]] | None,
    after: Mapping[str, Mapping[str, Any]] | None,
    table_keys: Sequence[str],
    index: IndexSpec,
) -> list[int]:
    """The index writes (write units of each) that a table write from `before` to `after` costs in one
    global secondary index, by DynamoDB's rules (developer guide, "Provisioned throughput considerations
    for global secondary indexes"): an item in the index neither before nor after, none; put into it or
    taken out of it, one; an indexed key attribute changed, two (delete the old entry, put the new one);
    only projected attributes changed, one; nothing projected changed, none."""
    old = index_entry_size(before, table_keys, index) if before is not None else None
    new = index_entry_size(after, table_keys, index) if after is not None else None
    if old is None:
        return [] if new is None else [write_units(new)]
    if new is None or before is None or after is None:
        return [write_units(old)]
    if any(before[key] != after[key] for key in index.keys):
        return [write_units(old), write_units(new)]
    names = _projected(before, table_keys, index) | _projected(after, table_keys, index)
    if any(before.get(name) != after.get(name) for name in names):
        return [write_units(new)]
    return []


# ---------------------------------------------------------------------------------------------- deliveries


@dataclass(frozen=True)
class SampleDelivery:
    path: str
    body: bytes
    kind: str


def simulated_deliveries(
    calls: int, seed: int = 7, workflows: int = 10, kinds: tuple[str, ...] = ("call", "dialer")
) -> list[SampleDelivery]:
    """The webhooks the AIRUDDER simulator would push for `calls` calls (call completions, plus the
    predictive-dialer ContactStatus of pds nodes with "dialer"), each body distinct. No server is started."""
    import json

    from tools.simulator import Dataset, DatasetConfig, WebhookPusher

    per_workflow = max(1, math.ceil(calls / workflows))
    dataset = Dataset(DatasetConfig(seed=seed, workflows=workflows, calls_per_workflow=per_workflow))
    pusher = WebhookPusher("http://127.0.0.1:9", recording_base_url="https://recordings.airudder.com", kinds=kinds)
    found = []
    for delivery in pusher.deliveries(dataset.calls()[:calls]):
        path = delivery.url.removeprefix("http://127.0.0.1:9")
        found.append(SampleDelivery(path, json.dumps(delivery.body).encode(), delivery.kind))
    return found


# ---------------------------------------------------------------------------------------------- stats


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
