"""Building blocks of the sync tests: a simulated AIRUDDER tenant, the sync engine wired to the local
stack's moto server and to the simulator over HTTP, and readers of what the sync left behind."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from airudder_ingest.base.events import event_id
from airudder_ingest.base.settings import StoreSettings
from airudder_ingest.record.recorder import EventRecorder
from airudder_ingest.record.recording_queue import RecordingQueue
from airudder_ingest.storage.archive import ClaimChecks, unpack_envelope
from airudder_ingest.storage.store import EventStore
from airudder_ingest.sync.client import AirudderApiSettings, AirudderClient, AirudderCredentials, RequestCounter
from airudder_ingest.sync.job import SyncSettings, WorkflowSync
from tools.local_aws.moto_server import aws_client
from tools.local_aws.stack import LocalStack
from tools.simulator import AirudderSimulator, Call, Dataset, DatasetConfig, call_completed_body

APP_KEY, APP_SECRET = "sync-test-key", "sync-test-secret"
CALL_TYPE = "workflow.call"
_seeds = itertools.count(1000)


def simulator(*, recent: bool = False, **options: Any) -> AirudderSimulator:
    """A tenant with its own ids (a new seed each time: tests sharing a table never share a call).
    `recent`: its synthetic clock starts 6 hours ago, so that a run on the wall clock sees it."""
    config: dict[str, Any] = {
        k: options.pop(k) for k in ("workflows", "calls_per_workflow", "nodes_per_workflow") if k in options
    }
    if recent:
        config["epoch"] = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=6)
    dataset = Dataset(DatasetConfig(seed=next(_seeds), **config))
    return AirudderSimulator(app_key=APP_KEY, app_secret=APP_SECRET, dataset=dataset, **options)


def airudder_now(sim: AirudderSimulator) -> Callable[[], dt.datetime]:
    """AIRUDDER's 'now' for the simulated tenant: just after its newest change (its clock is synthetic)."""
    return lambda: sim.dataset.latest_update + dt.timedelta(seconds=1)


class Budget:
    """A Lambda's remaining time that runs out after `calls` AIRUDDER requests (then stays out)."""

    def __init__(self, counter: RequestCounter, calls: int, margin_ms: int) -> None:
        self.counter, self.calls, self.margin_ms = counter, calls, margin_ms

    def __call__(self) -> int:
        return 10 * self.margin_ms if self.counter.total < self.calls else 0


@dataclass
class SyncRig:
    """The sync engine as the Lambda builds it, but with its clients pointed at the local stack and the
    simulator, and a clock on the simulator's time."""

    stack: LocalStack
    sim: AirudderSimulator
    job: str
    settings: dict[str, Any] = field(default_factory=dict)
    api: dict[str, Any] = field(default_factory=dict)
    endpoint: str | None = None  # AWS endpoint: moto itself unless given (the fault proxy is slower)

    def __post_init__(self) -> None:
        endpoint = self.endpoint or self.stack.moto_url
        self.table = self.stack.resources["EventsTable"]["Ref"]
        self.bucket = self.stack.resources["ArchiveBucket"]["Ref"]
        self.queue_url = self.stack.resources["RecordingsQueue"]["QueueUrl"]
        settings = StoreSettings.model_validate({"EVENTS_TABLE": self.table, "ARCHIVE_BUCKET": self.bucket})
        self.ddb = aws_client("dynamodb", endpoint, self.stack.region)
        self.s3 = aws_client("s3", endpoint, self.stack.region)
        self.store = EventStore(self.table, self.ddb)
        self.recorder = EventRecorder(settings, self.store, ClaimChecks(self.bucket, self.s3), None)
        self.queue = RecordingQueue(self.queue_url, aws_client("sqs", endpoint, self.stack.region))
        self.sync_settings = SyncSettings(**{"job": self.job, **self.settings})
        self._inspector: Any = None

    def engine(self, **api: Any) -> WorkflowSync:
        """A fresh engine (its own AIRUDDER client and counter), as a new Lambda container would have."""
        client = AirudderClient(
            lambda: AirudderCredentials(APP_KEY, APP_SECRET),
            AirudderApiSettings(base_url=self.sim.url, **{**self.api, **api}),
            sleep=lambda _seconds: None,
        )
        return WorkflowSync(self.sync_settings, self.recorder, client, self.queue, now=airudder_now(self.sim))

    def run(self, engine: WorkflowSync | None = None, remaining: Callable[[], int] | None = None) -> Any:
        engine = engine or self.engine()
        return engine.run(remaining or (lambda: 3_600_000))

    # ------------------------------------------------------------------ what is stored

    def call_events(self, calls: Iterable[Call]) -> dict[str, list[dict[str, Any]]]:
        """Event items of each call (by call id), read from the call's partition."""
        return {c.call_id: list(self.store.entity_events("CALL", c.call_id)) for c in calls}

    def event_of(self, call: Call) -> dict[str, Any] | None:
        """The event a call's completion webhook (or its pulled record) is stored as."""
        wanted = event_id(CALL_TYPE, call_completed_body(call, self.sim.url))
        found = [e for e in self.store.entity_events("CALL", call.call_id) if e.get("event_id") == wanted]
        return found[0] if found else None

    def event(self, event_id: str) -> dict[str, Any] | None:
        """The stored event of an id (found through the table's stream, see Inspector.event)."""
        if self._inspector is None:
            from .stack_support import Inspector

            self._inspector = Inspector(self.stack)
        return self._inspector.event(event_id)

    def sources(self, calls: Iterable[Call]) -> Counter[str]:
        return Counter(str((self.event_of(c) or {}).get("source", "missing")) for c in calls)

    def archived(self, item: dict[str, Any]) -> dict[str, Any]:
        """The delivery an event or quarantine item keeps: its packed envelope, or its claim check's."""
        if "envelope" in item:
            return unpack_envelope(item["envelope"])
        return unpack_envelope(self.s3.get_object(Bucket=self.bucket, Key=item["envelope_key"])["Body"].read())

    def queued_call_ids(self) -> list[str]:
        """Call ids of every recording request in the queue (received and left in flight)."""
        sqs = self.stack.boto3_client("sqs")
        found: list[str] = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return found
            found += [json.loads(m["Body"])["call_id"] for m in messages]


def assert_each_call_stored_once(rig: SyncRig, calls: list[Call]) -> None:
    events = rig.call_events(calls)
    counts = {call_id: len(items) for call_id, items in events.items()}
    assert counts == dict.fromkeys(counts, 1), {k: v for k, v in counts.items() if v != 1}
    for call in calls:
        state = rig.store.get_state("CALL", call.call_id)
        assert state is not None and state["last_event_id"] == events[call.call_id][0]["event_id"]


def sync_quarantine(rig: SyncRig) -> list[dict[str, Any]]:
    """Every quarantine item the sync wrote (`source: sync`), as the store reads it."""
    pages = rig.ddb.get_paginator("scan").paginate(
        TableName=rig.table,
        FilterExpression="item_type = :q AND #s = :sync",
        ExpressionAttributeNames={"#s": "source"},
        ExpressionAttributeValues={":q": {"S": "quarantine"}, ":sync": {"S": "sync"}},
    )
    return [rig.store.get_quarantine(item["pk"]["S"][2:]) or {} for page in pages for item in page["Items"]]
