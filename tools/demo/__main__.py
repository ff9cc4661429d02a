"""``python -m tools.demo`` (make demo): the stack on embedded AWS, fed with every sample twice.

Starts what `make serve` starts, posts every sample body of events/ twice (the second time with its
keys reordered and re-indented, as a redelivery), adds a delivery with a wrong token and a malformed
one, then prints what each webhook type left in DynamoDB and in the archive (written by the archiver
from the table's stream: deliveries, event items, archive objects, objects per 1,000 deliveries), and
which events reached a queue subscribed to the stack's EventBridge bus (fan-out: one per stored event,
none for redeliveries). Last,
the scheduled sync
(tools/demo/sync_demo.py): a simulated AIRUDDER tenant pushes its call webhooks with some dropped, the sync
runs, and every call is checked in DynamoDB. Then it stops.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import requests

from tools.demo.bus_subscription import BusSubscription
from tools.demo.serve import describe
from tools.demo.sync_demo import run_sync_demo
from tools.local_aws.apigw_events import ROUTE_PREFIX, sample_files
from tools.local_aws.stack import LOCAL_RECORDING_HOSTS, LocalStack
from tools.simulator.bodies import reordered_json
from tools.simulator.recordings_server import RecordingsServer

EVENTS = Path(__file__).resolve().parents[2] / "events"
COUNTERS = ("received", "stored", "duplicates", "quarantined", "rejected")
# The samples' recording links point at AIRUDDER; the demo serves them from a local recordings server.
SAMPLE_RECORDING = re.compile(r"https://recordings\.airudder\.com/[^\"]*/([0-9a-fA-F]+)\.wav")
DEMO_RECORDING_BYTES = 256 * 1024


@dataclass
class TypeSummary:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    event_ids: set[str] = field(default_factory=set)
    quarantine_ids: set[str] = field(default_factory=set)


# The demo's subscription to the bus: a queue and a rule of this name, matching every ingest event.
DEMO_RULE = "demo-every-ingest-event"


class Demo:
    def __init__(self, stack: LocalStack, out: TextIO, recordings: RecordingsServer | None = None) -> None:
        self.stack = stack
        self.out = out
        self.recordings = recordings
        self.recorded_calls: set[str] = set()
        self.session = requests.Session()
        self.by_type: dict[str, TypeSummary] = defaultdict(TypeSummary)
        from airudder_ingest.storage.store import EventStore

        self.table = stack.resources["EventsTable"]["Ref"]
        self.bucket = stack.resources["ArchiveBucket"]["Ref"]
        self.store = EventStore(self.table, stack.boto3_client("dynamodb"))
        # Subscribed before the first delivery, as a customer's rule would be.
        self.subscriber = BusSubscription(stack, DEMO_RULE) if "IngestEventBus" in stack.resources else None

    def post(self, path: str, body: bytes, label: str, token: str | None = None) -> None:
        answer = self.session.post(
            self.stack.url(path),
            params={"token": token or self.stack.token},
            data=body,
            headers={"content-type": "application/json", "user-agent": "Airudder"},
            timeout=30,
        )
        outcome = answer.headers.get("x-ingest-outcome")
        event_id = answer.headers.get("x-event-id")
        reply = answer.json() if answer.status_code != 200 else {}
        quarantine_id = reply.get("quarantine_id")
        if event_id:
            event = self.store.find_event(event_id) or {}
            webhook_type = str(event.get("webhook_type", "?"))
            if event.get("recording_url") and event.get("call_id"):
                self.recorded_calls.add(str(event["call_id"]))
        elif quarantine_id:
            webhook_type = str((self.store.get_quarantine(quarantine_id) or {}).get("webhook_type", "?"))
        else:
            webhook_type = "(refused before routing)"
        summary = self.by_type[webhook_type]
        summary.counts["received"] += 1
        if outcome == "stored" and event_id:
            summary.counts["stored"] += 1
            summary.event_ids.add(event_id)
        elif outcome == "duplicate":
            summary.counts["duplicates"] += 1
        elif quarantine_id:
            summary.counts["quarantined"] += 1
            summary.quarantine_ids.add(quarantine_id)
        else:
            summary.counts["rejected"] += 1
        self.out.write(f"  {answer.status_code} {outcome or reply.get('error', ''):<18} {label}\n")

    def run(self) -> None:
        self.out.write("\nPosting every sample of events/ twice (the second time reordered and re-indented):\n")
        for sample in sample_files(EVENTS):
            relative = sample.relative_to(EVENTS)
            path = ROUTE_PREFIX + "/".join(relative.parent.parts)
            raw = self.local_links(sample.read_bytes())
            self.post(path, raw, relative.as_posix())
            self.post(path, reordered_json(json.loads(raw)).encode(), relative.as_posix() + " (redelivery)")
        self.out.write("\nAnd four deliveries at the edges:\n")
        dialer = "/webhooks/workflow/dialer"
        self.post(dialer, b'{"pds": {}}', "wrong token -> 401, stored nowhere", token="not-the-token")
        self.post(dialer, b'{"workflow_id": "w", "pds": ', "not JSON -> 400, quarantined")
        self.post(dialer, b'[{"workflow_id": "w"}]', "JSON but not an object -> 400, quarantined")
        # Never refused for what our model guessed: stored, filed under the workflow, `pds` named unreadable.
        self.post(
            dialer, b'{"workflow_id": "w", "pds": "ContactStatus"}', "not the push we guessed -> 200, pds unreadable"
        )

    def local_links(self, raw: bytes) -> bytes:
        """The sample with its recording links moved to the local recordings server."""
        if self.recordings is None:
            return raw
        base = self.recordings.base_url
        return SAMPLE_RECORDING.sub(
            lambda m: f"{base}/audio/{m.group(1)}.wav?size={DEMO_RECORDING_BYTES}", raw.decode()
        ).encode()

    def wait_for_recordings(self, seconds: float = 60.0) -> dict[str, dict[str, Any]]:
        """The recording state of every call that had a link, once each is settled (or time is up)."""
        deadline = time.monotonic() + seconds
        states: dict[str, dict[str, Any]] = {}
        while True:
            states = {call: self.store.recording_state(call) for call in sorted(self.recorded_calls)}
            settled = all(s.get("recording_status") not in (None, "retrying") for s in states.values())
            if settled or time.monotonic() > deadline:
                return states
            time.sleep(0.5)

    def recordings_summary(self) -> None:
        states = self.wait_for_recordings()
        archived = [c for c, s in states.items() if s.get("recording_status") == "archived"]
        self.out.write(f"\nRecordings: {len(archived)} of {len(states)} linked recordings archived\n")
        for call, state in states.items():
            self.out.write(
                f"  call {call}: {state.get('recording_status', 'not yet')}"
                f"  s3://{self.bucket}/{state.get('recording_s3_key', '-')}"
                f"  {state.get('recording_size', '-')} bytes  sha256 {str(state.get('recording_sha256', '-'))[:16]}…\n"
            )

    def summary(self) -> None:
        out = self.out
        out.write("\nSummary per webhook type\n")
        header = f"  {'type':<34}" + "".join(f"{name:>12}" for name in COUNTERS)
        out.write(header + "\n")
        totals = dict.fromkeys(COUNTERS, 0)
        for webhook_type in sorted(self.by_type):
            counts = self.by_type[webhook_type].counts
            out.write(f"  {webhook_type:<34}" + "".join(f"{counts[name]:>12}" for name in COUNTERS) + "\n")
            for name in COUNTERS:
                totals[name] += counts[name]
        out.write(f"  {'total':<34}" + "".join(f"{totals[name]:>12}" for name in COUNTERS) + "\n")

        # The archiver reads the table's stream (as its Lambda mapping would) and writes the batched archive.
        archiver = self.stack.stream_poller("ArchiverFunction")
        archiver.drain()
        held = self.archive_index()
        out.write("\nWhat each type left behind (DynamoDB items: event and entity state; its archive object)\n")
        for webhook_type in sorted(self.by_type):
            summary = self.by_type[webhook_type]
            if not summary.event_ids and not summary.quarantine_ids:
                continue
            out.write(f"  {webhook_type}\n")
            for event_id in sorted(summary.event_ids):
                event = self.store.find_event(event_id) or {}
                state = "no state item" if event.get("entity_kind") == "DELIVERY" else f"{event.get('pk')}/STATE"
                out.write(f"    event  {event.get('pk')}/{event.get('sk')}  entity {state}\n")
                out.write(f"           s3://{self.bucket}/{held.get(event_id, '(not archived)')}\n")
            for quarantine_id in sorted(summary.quarantine_ids):
                kept = self.store.get_quarantine(quarantine_id) or {}
                out.write(f"    quarantined  {kept.get('pk')}  reason: {kept.get('reason')}\n")
                out.write(f"           s3://{self.bucket}/{held.get(quarantine_id, '(not archived)')}\n")
        self.archive_summary(totals, held, len(archiver.batches))
        self.fanout_summary()

    def archive_index(self) -> dict[str, str]:
        """Event or quarantine id -> the archive object holding its line."""
        from airudder_ingest.storage.archive import QUARANTINE_PREFIX, RAW_PREFIX, ArchiveReader

        s3 = self.stack.boto3_client("s3")
        reader = ArchiveReader(self.bucket, s3)
        held: dict[str, str] = {}
        for area in (RAW_PREFIX, QUARANTINE_PREFIX):
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{area}/type=")
            for key in [obj["Key"] for page in pages for obj in page.get("Contents") or []]:
                if key.endswith(".jsonl.gz") and "/type=_" not in key:
                    for line in reader.lines(key):
                        held[str(line.get("quarantine_id") or line.get("event_id"))] = key
        return held

    def archive_summary(self, totals: dict[str, int], held: dict[str, str], batches: int) -> None:
        """Deliveries, event items, archive objects, and objects per 1,000 deliveries."""
        deliveries = totals["received"]
        events = sum(1 for _ in self.store.scan_events("0000-01-01", "9999-12-31"))
        objects = len(set(held.values()))
        self.out.write(
            f"\nArchive: {deliveries} deliveries, {events} event items in DynamoDB; the archiver read the"
            f" table's stream in {batches} batch{'es' if batches != 1 else ''} and wrote {len(held)} lines in"
            f" {objects} objects (one per webhook type and day of a batch):"
            f" {1000 * objects / max(deliveries, 1):.0f} objects per 1,000 deliveries (here a few deliveries of"
            f' each of {len(self.by_type)} types; a busy stream\'s batches hold thousands: README, "Archiver")\n'
        )
        if self.stack.faults is not None:
            # The webhook functions write no archive object: one durable write (the event item) before 200.
            puts = sum(
                1
                for call in self.stack.faults.calls("s3", "PutObject")
                if "/raw/" in call.path or "/quarantine/" in call.path
            )
            self.out.write(f"  S3 PUTs under raw/ and quarantine/: {puts} (the archiver's objects only)\n")

    def fanout_summary(self) -> None:
        if self.subscriber is None:
            self.out.write("\nFan-out: off (FanoutEnabled=false)\n")
            return
        self.stack.stream_poller("FanoutFunction").drain()  # publish what the stream holds
        arrived = self.subscriber.take()
        per_event = Counter(str(e["detail"]["event_id"]) for e in arrived)
        stored = {event_id for s in self.by_type.values() for event_id in s.event_ids}
        redeliveries = sum(s.counts["duplicates"] for s in self.by_type.values())
        once = sum(1 for event_id in stored if per_event.get(event_id) == 1)
        self.out.write(
            f"\nFan-out: a queue subscribed to bus {self.subscriber.bus} (rule {self.subscriber.name}) received"
            f" {len(arrived)} events: {once} of the {len(stored)} stored events exactly once,"
            f" {sum(n for e, n in per_event.items() if e not in stored)} for anything else"
            f" ({redeliveries} redeliveries, quarantined and refused deliveries publish nothing)\n"
        )
        for detail_type, count in sorted(Counter(str(e["detail-type"]) for e in arrived).items()):
            self.out.write(f"  {detail_type:<34}{count:>4}\n")
        if arrived:
            sample = arrived[0]["detail"]
            self.out.write(f"  e.g. detail of {sample['webhook_type']}: {json.dumps(sample)[:300]}…\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "5000")))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--verbose", action="store_true", help="show the functions' JSON logs and metrics")
    args = parser.parse_args(argv)
    with (
        RecordingsServer() as recordings,
        LocalStack(
            moto_port=args.moto_port,
            gateway_port=args.port,
            with_recordings_consumer=True,
            parameters={"RecordingAllowedHosts": f"{LOCAL_RECORDING_HOSTS},127.0.0.1:{recordings.port}"},
        ) as stack,
    ):
        if not args.verbose:
            # Set after the stack applied the template's variables, before the first invocation imports
            # the handlers: the summary below says what the logs would.
            os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
            os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        describe(stack)
        demo = Demo(stack, sys.stdout, recordings)
        demo.run()
        demo.summary()
        demo.recordings_summary()
        run_sync_demo(stack, sys.stdout)
    sys.stdout.write("\nDemo done; the local stack is stopped.\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
