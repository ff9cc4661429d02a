"""`airudder-data export` streams: its peak memory does not grow with the size of the export.

100,000 events are stored with EventStore.put_event (the store's own items and keys), then the installed
command exports 10,000 of them and all 100,000 from the moto server over HTTP, in a subprocess whose
peak RSS is measured (its launcher's RUSAGE_CHILDREN). A CLI that collected the rows first would need
hundreds of MB more for the large export; a streaming one needs the same.

Marked slow: about 4 minutes on 2 cores, nearly all of it in moto, whose GSI Query reads every item of
the table for each 1 MB page (~100 pages of 100,000 items here). Two shortcuts keep it at that, and
neither touches the CLI or the store:
- put_event writes through a client that hands each item straight to moto's DynamoDB backend in this
  process: over HTTP, moto's request parsing costs ~3 ms per item (5 minutes for 100,000);
- moto's Query answers are serialised with json.dumps instead of moto's generic serializer, which
  walks the service model for every attribute value (~7 ms per item; 100,000 would take 12 minutes).
  The body is the same DynamoDB JSON, paged by moto the same way (1 MB pages, LastEvaluatedKey).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airudder_ingest.store import EventRecord, EventStore
from tools import cfn
from tools.local_stack import LocalStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL_DAY, LARGE_DAY = "2025-03-01", "2025-03-02"
SMALL, TOTAL = 10_000, 100_000
# Allowed growth of peak RSS from the 10,000-event export to the 100,000-event one (measured: ~12 MB).
# What remains is one page: a 1 MB DynamoDB page is ~10 MB once parsed, and the 10,000-event day's
# pages (16 shards of 625 events) are only two-thirds full. Holding the 90,000 extra rows instead
# (dicts of ~25 fields and a ~400-byte body) would take several hundred MB.
ALLOWED_GROWTH_MB = 25


class _DirectToMoto:
    """The one DynamoDB call put_event makes, handed to moto's backend in this process (no HTTP)."""

    def __init__(self, stack: LocalStack) -> None:
        from moto.dynamodb.models import dynamodb_backends

        self._backend = dynamodb_backends[cfn.ACCOUNT_ID][stack.region]

    def put_item(self, *, TableName: str, Item: dict[str, Any], **_: Any) -> dict[str, Any]:
        self._backend.put_item(TableName, Item)
        return {}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.query

    def query_as_json(handler: Any) -> str:
        return json.dumps(original(handler).result)

    with pytest.MonkeyPatch.context() as patch, LocalStack(with_fault_proxy=False) as running:
        patch.setattr(DynamoHandler, "query", query_as_json)
        yield running


def record(n: int, day: str) -> EventRecord:
    """A workflow call-completion event as the pipeline builds it (every index field set)."""
    call_id = f"bulk-{day}-{n:06d}"
    body = {
        "workflow_id": "wf-bulk",
        "nodetask_id": f"node-{n % 4}",
        "case_id": f"case-{n:06d}",
        "task_id": "task-bulk",
        "call_id": call_id,
        "callee": f"+62812{n:07d}",
        "status": "answered" if n % 3 else "no_answer",
        "hangup_reason": "user_hangup",
        "talk_duration": n % 300,
        "variables": {"name": "Sample Person", "amount": "1500000", "due_date": "2025-04-20"},
    }
    time_of_day = f"{(n // 3600) % 24:02d}:{(n // 60) % 60:02d}:{n % 60:02d}"
    event_time = f"{day}T{time_of_day}.{n % 1000:03d}Z"
    event_id = f"{day.replace('-', '')}{n:024d}"
    return EventRecord(
        event_id=event_id,
        webhook_type="workflow.call",
        route="/webhooks/workflow/call",
        source="webhook",
        received_at=event_time,
        event_time=event_time,
        time_source="payload",
        entity_kind="CALL",
        entity_id=call_id,
        data=json.dumps(body, sort_keys=True, separators=(",", ":")),
        archive_key=f"raw/type=workflow.call/dt={day}/{event_id}.json",
        status=str(body["status"]),
        phone=str(body["callee"]),
        case_id=str(body["case_id"]),
        workflow_id="wf-bulk",
        nodetask_id=str(body["nodetask_id"]),
        task_id="task-bulk",
        call_id=call_id,
        recording_url=f"https://recordings.airudder.com/{call_id}.wav",
    )


@pytest.fixture(scope="module")
def bulk(stack: LocalStack) -> str:
    table = stack.resources["EventsTable"]["Ref"]
    store = EventStore(table, _DirectToMoto(stack))
    for n in range(SMALL):
        assert store.put_event(record(n, SMALL_DAY)).stored
    for n in range(TOTAL - SMALL):
        assert store.put_event(record(n, LARGE_DAY)).stored
    return str(table)


# Runs the command as its own child and reports that child's peak RSS. A child started straight from
# this process would carry this process's size in its ru_maxrss (Linux keeps the high-water mark across
# fork and exec), and this process holds moto's 100,000 items; the launcher is small when it forks.
LAUNCHER = """
import json, resource, subprocess, sys
with open(sys.argv[1], "wb") as err:
    code = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err).returncode
print(json.dumps({"code": code, "peak_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def export(stack: LocalStack, table: str, days: list[str], output: Path) -> tuple[int, float, str]:
    """Run the installed command; (rows written, its peak RSS in MiB, its stderr)."""
    script = Path(sys.executable).with_name("airudder-data")
    assert script.exists(), "airudder-data is not installed: run `make venv` (pip install -e .)"
    span = ["--day", days[0]] if len(days) == 1 else ["--from", days[0], "--to", days[-1]]
    argv = [str(script), "export", *span, "--format", "csv", "--output", str(output)]
    argv += ["--endpoint-url", stack.moto_url, "--table", table]
    err_path = output.with_suffix(".stderr")
    launched = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(err_path), *argv], capture_output=True, text=True, check=True
    )
    report = json.loads(launched.stdout)
    stderr = err_path.read_text()
    assert report["code"] == 0, stderr
    with output.open(encoding="utf-8") as lines:
        rows = sum(1 for _ in lines) - 1  # the header
    return rows, report["peak_rss_kib"] / 1024, stderr


def test_export_memory_does_not_grow_with_the_number_of_events(
    stack: LocalStack, bulk: str, tmp_path: Path, record_property: Any
) -> None:
    started = time.monotonic()
    small_rows, small_mb, _ = export(stack, bulk, [SMALL_DAY], tmp_path / "small.csv")
    large_rows, large_mb, large_err = export(stack, bulk, [SMALL_DAY, LARGE_DAY], tmp_path / "large.csv")
    record_property("export_peak_rss_mb", {"10k": round(small_mb, 1), "100k": round(large_mb, 1)})
    print(f"export peak RSS: {SMALL:,} events {small_mb:.1f} MB, {TOTAL:,} events {large_mb:.1f} MB")

    assert (small_rows, large_rows) == (SMALL, TOTAL)
    assert large_mb - small_mb < ALLOWED_GROWTH_MB, (small_mb, large_mb)
    assert f"exported {TOTAL:,} events of {SMALL_DAY}..{LARGE_DAY}" in large_err.splitlines()[-1]
    assert time.monotonic() - started < 900
