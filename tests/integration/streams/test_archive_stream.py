"""The archive built from the table's stream, over HTTP against moto: webhooks posted to the local gateway,
the stream read by the local stream poller into ArchiverFunction (its mapping's filters, batch size and
retries from template.yaml), the archive read back from S3. And the rebuild command after records the
stream lost.

Each test positions its own poller at the stream's end before it posts (LATEST), so it archives only what
that test sends; what a test posts without draining a poller is "lost" to the stream path for good."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from airudder_ingest.storage.archive import body_of, iter_jsonl_gz, line_place
from airudder_ops.archive_rebuild import rebuild_archive
from airudder_ops.cli import main as cli_main
from tests.integration.stack_support import Client, Inspector, Sample, all_samples
from tools.local_aws.stack import LocalStack
from tools.local_aws.stream_poller import StreamPoller

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _clean_faults(stack: LocalStack) -> Iterator[None]:
    yield
    assert stack.faults is not None
    stack.faults.clear()


def fresh_poller(stack: LocalStack) -> StreamPoller:
    """The archiver's mapping, reading only what comes after now."""
    poller = stack.stream_poller("ArchiverFunction")
    poller.starting_position = "LATEST"
    assert poller.poll_once() == []  # positions every shard at its end; invokes nothing
    return poller


def archive_lines(inspector: Inspector, area: str = "raw") -> dict[str, list[dict[str, Any]]]:
    """Every object under `area`/ (set-aside records excluded): key -> its lines."""
    found: dict[str, list[dict[str, Any]]] = {}
    for key in inspector.keys(f"{area}/"):
        if key.endswith(".jsonl.gz") and "/type=_" not in key:
            found[key] = list(iter_jsonl_gz(inspector.s3.get_object(Bucket=inspector.bucket, Key=key)["Body"].read()))
    return found


def line_counts(inspector: Inspector, area: str = "raw") -> Counter[str]:
    key = "quarantine_id" if area == "quarantine" else "event_id"
    return Counter(str(line[key]) for lines in archive_lines(inspector, area).values() for line in lines)


def table_event_ids(inspector: Inspector) -> set[str]:
    pages = inspector.ddb.get_paginator("scan").paginate(
        TableName=inspector.table,
        FilterExpression="item_type = :e",
        ExpressionAttributeValues={":e": {"S": "event"}},
        ProjectionExpression="event_id",
    )
    return {item["event_id"]["S"] for page in pages for item in page.get("Items", [])}


def variant(sample: Sample, n: int, tag: str) -> bytes:
    """The sample with one more top-level key: another event (another id), same type and event time."""
    body = sample.body()
    body[f"archive_test_{tag}"] = n
    return json.dumps(body).encode()


def test_every_sample_is_stored_once_and_archived_once(stack: LocalStack, client: Client, inspector: Inspector) -> None:
    poller = fresh_poller(stack)
    posted: dict[str, bytes] = {}
    for sample in all_samples():
        raw = sample.file.read_bytes()
        answer = client.post(sample.path, None, raw=raw)
        assert answer.status_code == 200, (sample.name, answer.text)
        posted[answer.headers["x-event-id"]] = raw
        again = client.post(sample.path, sample.body())  # a redelivery (other whitespace): no new line
        assert again.headers["x-ingest-outcome"] == "duplicate"
    batches = poller.drain()
    assert batches and all(batch.error is None for batch in batches)
    # Every event in DynamoDB, its line in exactly one archive object, the body byte for byte
    assert set(posted) <= table_event_ids(inspector)
    counts = line_counts(inspector)
    assert {event_id: counts[event_id] for event_id in posted} == dict.fromkeys(posted, 1)
    lines = {str(line["event_id"]): (key, line) for key, found in archive_lines(inspector).items() for line in found}
    for event_id, raw in posted.items():
        key, line = lines[event_id]
        assert body_of(line) == raw
        _area, webhook_type, day = line_place(line)
        assert key.startswith(f"raw/type={webhook_type}/dt={day}/") and key.endswith(".jsonl.gz")
    # Batched: one batch here (fewer records than BatchSize), so one object per type and day
    assert len(batches) == 1
    assert len({lines[e][0] for e in posted}) == len({line_place(lines[e][1]) for e in posted})


def test_quarantined_deliveries_are_archived_too(stack: LocalStack, client: Client, inspector: Inspector) -> None:
    poller = fresh_poller(stack)
    bodies = [b'{"workflow_id": "w", "pds": ', b'[{"workflow_id": "archive-test"}]']
    ids = []
    for raw in bodies:
        answer = client.post("/webhooks/workflow/dialer", None, raw=raw)
        assert answer.status_code == 400
        ids.append(answer.json()["quarantine_id"])
    poller.drain()
    counts = line_counts(inspector, "quarantine")
    assert [counts[i] for i in ids] == [1, 1]
    found = {
        str(line["quarantine_id"]): line for lines in archive_lines(inspector, "quarantine").values() for line in lines
    }
    assert [body_of(found[i]) for i in ids] == bodies
    assert all(found[i]["webhook_type"] == "workflow.dialer" and found[i]["http_status"] == 400 for i in ids)


def test_a_batch_failing_mid_write_is_retried_whole_and_leaves_each_event_once(
    stack: LocalStack, client: Client, inspector: Inspector
) -> None:
    assert stack.faults is not None
    poller = fresh_poller(stack)
    chosen = [s for s in all_samples() if s.path.endswith(("/workflow/call", "/workflow/dialer"))]
    posted = []
    for n, sample in enumerate(chosen * 2):
        answer = client.post(sample.path, None, raw=variant(sample, n, "retry"))
        assert answer.headers["x-ingest-outcome"] == "stored"
        posted.append(answer.headers["x-event-id"])
    # S3 refuses every write under raw/type=workflow.dialer/: the batch's call group is written, then it fails
    stack.faults.fail("s3", "PutObject", resource=f"{inspector.bucket}/raw/type=workflow.dialer/", status=503)
    stack.faults.reset_calls()
    (failed,) = poller.poll_once()
    assert failed.error is not None and failed.records == len(posted)
    written = [c.resource for c in stack.faults.calls("s3", "PutObject", injected=False)]
    assert written and all("/raw/type=workflow.call/" in key for key in written)
    # The retry: the same batch (Lambda keeps the shard's position), whole, under the same names
    stack.faults.clear()
    stack.faults.reset_calls()
    retried = poller.drain()
    assert retried[0].error is None and retried[0].sequence_numbers[0] == failed.sequence_numbers[0]
    rewritten = {c.resource for c in stack.faults.calls("s3", "PutObject", injected=False)}
    assert set(written) <= rewritten  # the first try's objects overwritten, not written beside
    counts = line_counts(inspector)
    assert [counts[e] for e in posted] == [1] * len(posted)


def test_the_rebuild_restores_what_the_stream_lost_once_and_a_second_run_writes_nothing(
    stack: LocalStack, client: Client, inspector: Inspector
) -> None:
    poller = fresh_poller(stack)
    samples = all_samples()[:6]
    kept, lost = [], []
    for n, sample in enumerate(samples):
        answer = client.post(sample.path, None, raw=variant(sample, n, "kept"))
        kept.append(answer.headers["x-event-id"])
    poller.drain()  # archived by the stream path
    # Stream loss: these records never reach the archiver (no poller reads them, ever)
    for n, sample in enumerate(samples):
        answer = client.post(sample.path, None, raw=variant(sample, n, "lost"))
        lost.append(answer.headers["x-event-id"])
    lost_quarantine = client.post("/webhooks/workflow/call", None, raw=b"{lost").json()["quarantine_id"]
    before = line_counts(inspector)
    assert all(before[e] == 1 for e in kept) and not any(before[e] for e in lost)

    store = inspector.store()
    days = sorted({line_place(line)[2] for lines in archive_lines(inspector).values() for line in lines})
    first, last = days[0], datetime.now(UTC).date().isoformat()  # untimed events and quarantine: today
    dry = rebuild_archive(store, inspector.bucket, inspector.s3, first, last, dry_run=True)
    assert dry.missing >= len(lost) + 1 and dry.written == []
    report = rebuild_archive(store, inspector.bucket, inspector.s3, first, last)
    assert report.missing == dry.missing and report.written
    assert all(key.rsplit("/", 1)[-1].startswith("rebuild-") for key in report.written)
    after = line_counts(inspector)
    assert [after[e] for e in kept + lost] == [1] * len(kept + lost)
    # Every event of the table in those days is in the archive exactly once
    assert set(after) >= table_event_ids(inspector) and max(after.values()) == 1
    assert line_counts(inspector, "quarantine")[lost_quarantine] == 1
    # Idempotent: a second run finds nothing missing and writes nothing
    objects = inspector.keys()
    again = rebuild_archive(store, inspector.bucket, inspector.s3, first, last)
    assert again.missing == 0 and again.written == [] and inspector.keys() == objects
    assert sum(p.in_archive for p in again.places) == sum(p.in_table for p in again.places)


def test_the_rebuild_command_reports_counts(stack: LocalStack, inspector: Inspector, capsys: Any) -> None:
    args = ["--endpoint-url", stack.moto_url, "--table", inspector.table, "--bucket", inspector.bucket]
    today = datetime.now(UTC).date().isoformat()
    code = cli_main(
        ["rebuild-archive", "--from", "2020-01-01", "--to", today, "--settle-minutes", "0", "--json", *args]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["missing"] == 0 and report["objects_written"] == [] and report["in_table"] == report["in_archive"] > 0
    code = cli_main(["rebuild-archive", "--from", "2020-01-01", "--to", today, "--dry-run", *args])
    assert code == 0
    assert "0 missing lines; would write 0 objects" in capsys.readouterr().out
