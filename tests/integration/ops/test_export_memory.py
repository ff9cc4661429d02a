"""`airudder-data export` streams the archive: its peak memory does not grow with the size of the export.

50,000 events are archived as the archiver writes them (gzip JSON Lines of `archive.archive_line`, one
object per stream batch of BATCH lines, under raw/type=<type>/dt=<day>/) in a moto server's bucket; then
the installed command exports the 5,000 of one day and all 50,000 of two days over HTTP, in a
subprocess whose peak RSS is measured (its launcher's RUSAGE_CHILDREN). A CLI that collected the rows
first would need about 90 MB more for the large export; a streaming one needs the same.

The lines are made with the store's and the archive's own functions (store.event_item, archive_line,
encode_jsonl_gz) from the records the recorder would build; only the archiver itself is left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airudder_ingest.models.record import EventRecord
from airudder_ingest.storage.archive import (
    RAW_PREFIX,
    ArchiveReader,
    Envelope,
    archive_line,
    encode_jsonl_gz,
    partition_prefix,
)
from airudder_ingest.storage.store import event_item
from tools.local_aws.moto_server import MotoServer, aws_client

pytestmark = pytest.mark.integration

BUCKET = "export-memory-archive"
SMALL_DAY, LARGE_DAY = "2025-03-01", "2025-03-02"
SMALL, TOTAL = 5_000, 50_000
BATCH = 2_000  # lines per archive object (one stream batch)
# Allowed growth of peak RSS from the 5,000-event export to the 50,000-event one. What a streaming
# export holds is one row and one object's gzip window, the same for both; holding the 45,000 extra rows
# instead (dicts of 26 fields and a ~400-byte body each) takes about 90 MB (measured: the 45,000 archive
# lines of `lines`, held in a list). Half the sizes first used: six times the allowed growth, at half the time.
ALLOWED_GROWTH_MB = 15


def record(n: int, day: str) -> tuple[EventRecord, bytes]:
    """A workflow call-completion event as the recorder builds it (every fact set), and its body."""
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
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    rec = EventRecord(
        event_id=f"{day.replace('-', '')}{n:024d}",
        webhook_type="workflow.call",
        route="/webhooks/workflow/call",
        source="webhook",
        received_at=event_time,
        event_time=event_time,
        time_source="payload",
        entity_kind="CALL",
        entity_id=call_id,
        status=str(body["status"]),
        phone=str(body["callee"]),
        case_id=str(body["case_id"]),
        workflow_id="wf-bulk",
        nodetask_id=str(body["nodetask_id"]),
        task_id="task-bulk",
        call_id=call_id,
        recording_url=f"https://recordings.airudder.com/{call_id}.wav",
    )
    return rec, text.encode()


def lines(day: str, first: int, count: int) -> Iterator[dict[str, Any]]:
    for n in range(first, first + count):
        rec, body = record(n, day)
        envelope = Envelope(path=rec.route, body=body, headers={"content-type": "application/json"}).fields()
        yield archive_line(event_item(rec, envelope=b"packed"), envelope)


@pytest.fixture(scope="module")
def archive() -> Iterator[str]:
    server = MotoServer().start()
    try:
        s3 = aws_client("s3", server.url)
        s3.create_bucket(Bucket=BUCKET)
        reader = ArchiveReader(BUCKET, s3)
        for day, count in ((SMALL_DAY, SMALL), (LARGE_DAY, TOTAL - SMALL)):
            for first in range(0, count, BATCH):
                key = partition_prefix(RAW_PREFIX, "workflow.call", day) + f"batch-{first:06d}.jsonl.gz"
                reader.put_object(key, encode_jsonl_gz(lines(day, first, min(BATCH, count - first))))
        yield server.url
    finally:
        server.stop()


# Runs the command as its own child and reports that child's peak RSS. A child started straight from
# this process would carry this process's size in its ru_maxrss (Linux keeps the high-water mark across
# fork and exec), and this process holds moto's objects; the launcher is small when it forks.
LAUNCHER = """
import json, resource, subprocess, sys
with open(sys.argv[1], "wb") as err:
    code = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err).returncode
print(json.dumps({"code": code, "peak_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def export(endpoint: str, days: list[str], output: Path) -> tuple[int, float, str]:
    """Run the installed command; (rows written, its peak RSS in MiB, its stderr)."""
    script = Path(sys.executable).with_name("airudder-data")
    assert script.exists(), "airudder-data is not installed: run `make venv` (pip install -e .)"
    span = ["--day", days[0]] if len(days) == 1 else ["--from", days[0], "--to", days[-1]]
    argv = [str(script), "export", *span, "--format", "csv", "--output", str(output)]
    argv += ["--endpoint-url", endpoint, "--bucket", BUCKET, "--region", "us-east-1"]
    err_path = output.with_suffix(".stderr")
    launched = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(err_path), *argv],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )
    report = json.loads(launched.stdout)
    stderr = err_path.read_text()
    assert report["code"] == 0, stderr
    with output.open(encoding="utf-8") as rows:
        count = sum(1 for _ in rows) - 1  # the header (no body holds a raw newline: CSV quotes JSON text)
    return count, report["peak_rss_kib"] / 1024, stderr


def test_export_memory_does_not_grow_with_the_number_of_events(
    archive: str, tmp_path: Path, record_property: Any
) -> None:
    small_rows, small_mb, _ = export(archive, [SMALL_DAY], tmp_path / "small.csv")
    large_rows, large_mb, large_err = export(archive, [SMALL_DAY, LARGE_DAY], tmp_path / "large.csv")
    record_property("export_peak_rss_mb", {"5k": round(small_mb, 1), "50k": round(large_mb, 1)})
    print(f"export peak RSS: {SMALL:,} events {small_mb:.1f} MB, {TOTAL:,} events {large_mb:.1f} MB")

    assert (small_rows, large_rows) == (SMALL, TOTAL)
    assert large_mb - small_mb < ALLOWED_GROWTH_MB, (small_mb, large_mb)
    assert f"exported {TOTAL:,} events of {SMALL_DAY}..{LARGE_DAY}" in large_err.splitlines()[-1]
