"""The archive of what a test stack's table holds, for the readers' tests (CLI, Athena layout).

`archive_stack` runs the stack's ArchiverFunction over the table's stream (the local stream poller, as
the event source mapping would) when template.yaml has it. Without it, a stand-in (`archive_table`)
writes what the archiver would: every event item (but those marked `in_archive`) and every quarantine
item of the table as one line (`archive.archive_line`), grouped by `archive.line_place` into gzip JSON
Lines objects (`encode_jsonl_gz`) under `partition_prefix`, named as the rebuild command names its
objects. Call it once, after the deliveries.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from airudder_ingest.storage.archive import (
    ArchiveReader,
    ClaimChecks,
    archive_line,
    encode_jsonl_gz,
    line_place,
    partition_prefix,
    rebuild_object_name,
    unpack_envelope,
)
from airudder_ingest.storage.store import EventStore
from tools.local_aws.stack import LocalStack
from tools.local_aws.template import load_template

EVERY_DAY = ("0000-01-01", "9999-12-31")
ARCHIVER = "ArchiverFunction"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def archive_stack(stack: LocalStack) -> None:
    """Archive everything the stack's table stream holds (the archiver), or the table (the stand-in)."""
    if ARCHIVER in load_template(TEMPLATE)["Resources"]:
        batches = stack.stream_poller(ARCHIVER).drain()
        assert batches and not [b for b in batches if b.failed_from or b.error], batches
        return
    s3 = stack.boto3_client("s3")
    archive_table(
        stack.resources["EventsTable"]["Ref"],
        stack.resources["ArchiveBucket"]["Ref"],
        stack.boto3_client("dynamodb"),
        s3,
    )


def archive_table(table: str, bucket: str, ddb: Any, s3: Any) -> list[str]:
    """Write the archive of every event and quarantine item of `table`; returns the object keys."""
    store = EventStore(table, ddb)
    claims = ClaimChecks(bucket, s3)
    places: dict[tuple[str, str, str], list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    items = [*store.scan_events(*EVERY_DAY), *store.scan_quarantine(*EVERY_DAY)]
    for item in items:
        if item.get("in_archive"):
            continue
        blob = item["envelope"] if "envelope" in item else claims.get(str(item["envelope_key"]))
        line = archive_line(item, unpack_envelope(blob))
        places[line_place(line)].append((str(item.get("event_id") or item.get("quarantine_id")), line))
    reader = ArchiveReader(bucket, s3)
    keys = []
    for (area, webhook_type, day), named in sorted(places.items()):
        key = partition_prefix(area, webhook_type, day) + rebuild_object_name(name for name, _ in named)
        reader.put_object(key, encode_jsonl_gz(line for _, line in sorted(named, key=lambda pair: pair[0])))
        keys.append(key)
    return keys
