"""Failure drills, each ending with an exact count and nothing lost.

Quick sizes in `make test`; `make drills` (DRILLS=full) runs the same drills at full size: 2,000 webhooks
through an AWS outage, 10,000 hostile requests, 2,200 deliveries and 300 pulled records with hostile values,
20 bodies x 50 concurrent senders (drills_support.SIZES).

1. outage     the AIRUDDER simulator pushes its webhooks (AIRUDDER's retry rule, retry delay scaled down)
              while the fault proxy cuts AWS off for a stretch in the middle: those deliveries get 5xx,
              the retries land them, and DynamoDB holds every event exactly once.
2. kill       the deployed handler, in a process of its own, is SIGKILLed right after the event write
              (the one durable write, envelope included) and, in turn, after the state write: the retry
              completes it.
3. hostile    malformed and hostile requests (hypothesis): bodies, headers, query strings, tokens, base64
              flags, huge and deep JSON, invalid UTF-8. No 5xx, no exception; each answered 401, 404,
              413, 400 or 200 as it should be; every authenticated refusal is quarantined. In-process
              against the moto server for the bulk, plus a sample over HTTP through the local gateway.
   hostile values (issue 11) authenticated deliveries to every modelled route, and call records pulled
              by the sync, with values past every limit: lone surrogates and control characters, numbers
              past float and int limits, NaN and Infinity, times out of range in every accepted form, ids
              and fields past DynamoDB's key and item limits. For each: no 5xx, the raw bytes kept (as an
              event or in quarantine), the same answer on the retry; the sync finishes every run.
4. duplicates each body posted by 50 concurrent senders at once: exactly one event each.
5. archiver   the archiver, in a process of its own, is SIGKILLed mid-batch (right after the batch's first
              archive object is written); Lambda's retry of the same batch leaves each event's line in
              the archive exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from airudder_ingest.base.events import event_id
from airudder_ingest.storage.archive import body_of, iter_jsonl_gz
from airudder_ingest.sync.job import webhook_body
from tools.local_aws.stack import TEST_TIMEOUT_SCALE, LocalStack
from tools.simulator import AirudderSimulator, Delivery
from tools.simulator.bodies import dump_json

from .drills_support import (
    HOSTILE_SYNC_CALLS,
    REPO_ROOT,
    SIZES,
    STOP_POINTS,
    HostileCase,
    hostile_cases,
    hostile_value_cases,
    record_changes,
    same_json,
)
from .stack_support import Client, Inspector, all_samples
from .sync_support import CALL_TYPE, SyncRig, simulator, sync_quarantine

pytestmark = pytest.mark.integration
# The default: fields past DynamoDB's 400 KB item limit fit in a body (issue 11).
MAX_BODY_BYTES = 1_048_576
CALL_ROUTE = "/webhooks/workflow/call"
DIALER = "/webhooks/workflow/dialer"


# The drills measure ingest, not the route throttles (tests/integration/edge/test_route_throttles.py): buckets
# larger than every request a drill can send (the outage drill's retries included), so none is throttled
# whatever the timing.
UNTHROTTLED = {
    f"{tier}RoutesThrottling{limit}": "1000000" for tier in ("Call", "Other") for limit in ("RateLimit", "BurstLimit")
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    parameters = {"MaxBodyBytes": str(MAX_BODY_BYTES), **UNTHROTTLED}
    with LocalStack(parameters=parameters, timeout_scale=TEST_TIMEOUT_SCALE) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Client:
    return Client(stack)


@pytest.fixture(scope="module")
def inspector(stack: LocalStack) -> Inspector:
    return Inspector(stack)


def scan(inspector: Inspector, prefix: str) -> list[dict[str, Any]]:
    """Every item whose pk starts with `prefix`, straight from moto."""
    pages = inspector.ddb.get_paginator("scan").paginate(
        TableName=inspector.table,
        FilterExpression="begins_with(pk, :p)",
        ExpressionAttributeValues={":p": {"S": prefix}},
    )
    return [item for page in pages for item in page.get("Items", [])]


# ---------------------------------------------------------------------------------------------- 1. outage

OUTAGE_REFUSALS = 3  # refused attempts of one delivery that end the outage (AIRUDDER gives up after 5)


def test_an_aws_outage_mid_push_loses_nothing_and_stores_every_event_once(
    stack: LocalStack, inspector: Inspector
) -> None:
    assert stack.faults is not None
    faults = stack.faults
    n = SIZES.outage_webhooks
    sim = AirudderSimulator(seed=606, workflows=10, calls_per_workflow=n // 10)
    calls = sim.dataset.calls()
    assert len(calls) == n
    call_ids = {c.call_id for c in calls}
    # When a third of the webhooks are delivered, AWS becomes unreachable; it comes back once one webhook
    # has been refused OUTAGE_REFUSALS times (about two retry delays). Driven by the pusher's outcomes, not
    # by a clock: however slow the machine, the outage happens mid-push, refuses some deliveries, and no
    # delivery can fail five times (three refusals, plus one attempt in flight when AWS comes back).
    outage: dict[str, Any] = {"delivered": 0, "phase": "before", "started": 0.0, "seconds": 0.0}
    refusals: Counter[int] = Counter()

    def cut_aws_in_the_middle(delivery: Delivery, attempt: int, outcome: str) -> None:
        if outage["phase"] == "before" and outcome.startswith("2"):
            outage["delivered"] += 1
            if outage["delivered"] == n // 3:
                faults.outage()
                outage.update(phase="out", started=time.monotonic())
        elif outage["phase"] == "out" and not outcome.startswith("2"):
            refusals[delivery.seq] += 1
            if refusals[delivery.seq] == OUTAGE_REFUSALS:
                faults.restore()
                outage.update(phase="after", seconds=time.monotonic() - outage["started"])

    with sim:
        try:
            report = sim.push_webhooks(
                stack.gateway_url,
                token=stack.token,
                kinds=("call",),
                retry_delay=SIZES.retry_delay,
                concurrency=8,
                timeout=60,
                on_attempt=cut_aws_in_the_middle,
            )
        finally:
            faults.restore()
    assert outage["phase"] == "after", outage
    print(f"outage: {outage['seconds']:.1f} s, {sum(refusals.values())} refused attempts")
    # Every webhook was delivered in the end; some only by a retry after a 5xx during the outage.
    assert report.planned == n and report.skipped == 0
    assert report.dropped == 0, report.summary()
    assert report.delivered == n, report.summary()
    server_errors = sum(v for k, v in report.outcomes.items() if k.startswith("5"))
    assert server_errors > 0 and report.retried > 0, report.summary()
    assert report.attempts == n + report.retried
    # DynamoDB holds exactly one event per webhook, with its envelope, and its state.
    from airudder_ingest.base.events import event_id
    from tools.simulator import call_completed_body

    expected = {event_id("workflow.call", call_completed_body(c, sim.url)) for c in calls}
    events = [e for e in scan(inspector, "CALL#") if e["sk"]["S"].startswith("EV#") and e["call_id"]["S"] in call_ids]
    stored = Counter(e["event_id"]["S"] for e in events)
    assert len(events) == n and set(stored) == expected and set(stored.values()) == {1}
    assert all("envelope" in e for e in events)
    states = [s for s in scan(inspector, "CALL#") if s["sk"]["S"] == "STATE" and s["call_id"]["S"] in call_ids]
    assert len(states) == n


# ---------------------------------------------------------------------------------------------- 2. kill


def kill_at_marker(arguments: list[str], marker: Path) -> None:
    """Run a drills_support child (`arguments` after the module) until it writes `marker`, where it waits,
    then SIGKILL it: the process never gets past that point."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.drills_support", *arguments, "--marker", str(marker)],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Waiting on the child's own signal (the marker file), not on time: the deadline only ends a hang.
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), child.stderr.read().decode()[-2000:] if child.stderr else "no marker"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL


def _contact(call_id: str, rec: str = "") -> dict[str, Any]:
    return {
        "workflow_id": "wf-kill",
        "nodetask_id": "nt-kill",
        "pds": {
            "type": "ContactStatus",
            "body": {
                "taskId": "task-kill",
                "callid": call_id,
                "state": "HANGUP",
                "phoneNumber": "+6281200000002",
                "timestamp": "1767225600000",
                "recLink": rec,
            },
        },
    }


@pytest.mark.parametrize("stop_after", STOP_POINTS)
def test_a_handler_killed_mid_ingest_is_completed_by_the_retry(
    stop_after: str, stack: LocalStack, inspector: Inspector, client: Client, tmp_path: Path
) -> None:
    from tools.local_aws.gateway import build_event, match_route

    assert stack.faults is not None
    call_id = f"kill-{stop_after}-{os.getpid()}-{time.monotonic_ns()}"
    body = json.dumps(_contact(call_id, rec="https://recordings.airudder.com/r.wav")).encode()
    found = match_route(stack.route_objects, "POST", DIALER)
    assert found is not None
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(build_event("POST", DIALER, {"token": stack.token}, {}, body, found[0])))
    marker = tmp_path / "marker"
    stack.faults.reset_calls()
    kill_at_marker(["kill", "--event", str(event_file), "--stop-after", stop_after], marker)
    store = inspector.store()
    wrote = [c.operation for c in stack.faults.calls() if c.service in ("s3", "dynamodb", "sqs")]
    # What the killed process left behind, exactly
    left = {"event": ["PutItem"], "state": ["PutItem", "UpdateItem"]}
    assert wrote == left[stop_after]
    events = list(store.entity_events("CALL", call_id))
    assert len(events) == 1 and "envelope" in events[0]
    assert (store.get_state("CALL", call_id) is not None) == (stop_after == "state")
    # When AIRUDDER retries (the same body, over HTTP)
    stack.faults.reset_calls()
    retry = client.post(DIALER, None, raw=body)
    # Then the event is complete: stored once, its state applied, its recording queued
    assert retry.status_code == 200
    assert retry.headers["x-ingest-outcome"] == "duplicate"
    events = list(store.entity_events("CALL", call_id))
    assert len(events) == 1
    state = store.get_state("CALL", call_id)
    assert state is not None and state["last_event_id"] == events[0]["event_id"]
    assert stack.faults.count("sqs", "SendMessage") == 1


# ---------------------------------------------------------------------------------------------- 3. hostile


class HostileLedger:
    """What the hostile requests were answered, and what that must have left in the store."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.kinds: Counter[str] = Counter()
        self.quarantine_ids: set[str] = set()
        self.stored_event_ids: set[str] = set()
        self.count = 0

    def check(self, case: HostileCase, status: int, headers: dict[str, str], body: bytes) -> None:
        self.count += 1
        self.statuses[status] += 1
        self.kinds[case.body_kind] += 1
        assert status < 500, f"{status} for a {case.body_kind} body: {body[:300]!r}"
        assert status in case.expected, (
            f"{status} for {case.body_kind} on {case.raw_path} (expected {sorted(case.expected)}, "
            f"authenticated {case.authenticated}): {body[:300]!r}"
        )
        answer = json.loads(body or b"{}")
        if status in (400, 413):
            assert answer.get("quarantine_id"), answer
            self.quarantine_ids.add(answer["quarantine_id"])
        elif status == 200:
            self.stored_event_ids.add(headers["x-event-id"])
        else:
            assert "quarantine_id" not in answer

    def check_store(self, inspector: Inspector) -> None:
        quarantined = {item["pk"]["S"][2:] for item in scan(inspector, "Q#")}
        missing = self.quarantine_ids - quarantined
        assert not missing, f"{len(missing)} refused bodies were not quarantined"
        store = inspector.store()
        for quarantine_id in self.quarantine_ids:
            item = store.get_quarantine(quarantine_id)
            assert item is not None and item["http_status"] in (400, 413)
        for event in self.stored_event_ids:
            assert inspector.event(event) is not None


HYPOTHESIS = settings(
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)


def test_hostile_requests_in_process_are_each_answered_as_they_should_be(
    stack: LocalStack, inspector: Inspector
) -> None:
    ledger = HostileLedger()

    @settings(HYPOTHESIS, max_examples=SIZES.hostile_in_process)
    @given(case=hostile_cases(stack.token, MAX_BODY_BYTES))
    def run(case: HostileCase) -> None:
        function_id = next(r.function_id for r in stack.route_objects if r.route_key == case.route_key)
        answer = stack.invoke(function_id, case.event())  # the deployed handler; it must never raise
        ledger.check(case, answer["statusCode"], answer["headers"], answer["body"].encode())

    run()
    assert ledger.count == SIZES.hostile_in_process, ledger.count
    assert set(ledger.statuses) <= {200, 400, 401, 404, 413}
    assert ledger.statuses[401] > 0 and ledger.statuses[400] > 0 and ledger.statuses[413] > 0
    ledger.check_store(inspector)
    print(f"hostile in-process: {ledger.count} requests, statuses {dict(ledger.statuses)}, "
          f"{len(ledger.quarantine_ids)} distinct bodies quarantined")  # fmt: skip


def test_hostile_requests_over_http_are_each_answered_as_they_should_be(
    stack: LocalStack, inspector: Inspector
) -> None:
    ledger = HostileLedger()
    session = requests.Session()

    @settings(HYPOTHESIS, max_examples=SIZES.hostile_http)
    @given(case=hostile_cases(stack.token, MAX_BODY_BYTES, http=True))
    def run(case: HostileCase) -> None:
        answer = session.post(
            stack.gateway_url + case.raw_path,
            params=case.query,
            headers={**case.headers},
            data=case.raw,
            timeout=30,
        )
        ledger.check(case, answer.status_code, dict(answer.headers), answer.content)

    run()
    assert ledger.count == SIZES.hostile_http
    ledger.check_store(inspector)


# ---------------------------------------------------------------------------------------------- 3b. hostile values


Answer = tuple[int, dict[str, str], bytes]  # status, headers, body


class KeptLedger:
    """Checks that each hostile-value delivery is kept, byte for byte, and answered the same on the retry."""

    def __init__(self, inspector: Inspector) -> None:
        self.inspector = inspector
        self.store = inspector.store()
        self.statuses: Counter[int] = Counter()
        self.count = 0

    def check(self, case: HostileCase, first: Answer, retry: Answer) -> None:
        self.count += 1
        self.statuses[first[0]] += 1
        outcome = self._kept(case, *first)
        assert retry[0] == first[0], f"{first[0]} then {retry[0]} for {case.body_kind} on {case.raw_path}"
        assert self._kept(case, *retry) == outcome
        if first[0] == 200:
            assert retry[1]["x-ingest-outcome"] == "duplicate"

    def _kept(self, case: HostileCase, status: int, headers: dict[str, str], body: bytes) -> tuple[str, str]:
        assert status < 500, f"{status} for {case.body_kind} on {case.raw_path}: {body[:300]!r}"
        assert status in case.expected, f"{status} for {case.body_kind} on {case.raw_path}: {body[:300]!r}"
        if status == 200:
            event = self.inspector.event(headers["x-event-id"])
            assert event is not None, case.body_kind
            assert body_of(self.inspector.archived(event)) == case.raw, case.body_kind
            return "event", event["event_id"]
        quarantine_id = json.loads(body)["quarantine_id"]
        item = self.store.get_quarantine(quarantine_id)
        assert item is not None and item["http_status"] == status and item["reason"], case.body_kind
        assert body_of(self.inspector.archived(item)) == case.raw, case.body_kind
        return "quarantine", quarantine_id


def test_hostile_values_in_process_are_each_kept_and_answered_the_same_on_the_retry(
    stack: LocalStack, inspector: Inspector
) -> None:
    ledger = KeptLedger(inspector)

    @settings(HYPOTHESIS, max_examples=SIZES.hostile_values_in_process)
    @given(case=hostile_value_cases(stack.token, MAX_BODY_BYTES))
    def run(case: HostileCase) -> None:
        function_id = next(r.function_id for r in stack.route_objects if r.route_key == case.route_key)
        answers = [stack.invoke(function_id, case.event()) for _ in range(2)]  # the delivery, then the retry
        first, retry = ((a["statusCode"], a["headers"], a["body"].encode()) for a in answers)
        ledger.check(case, first, retry)

    run()
    assert ledger.count == SIZES.hostile_values_in_process
    assert ledger.statuses[200] > 0
    print(f"hostile values in-process: {ledger.count} deliveries (and their retries), statuses {dict(ledger.statuses)}")


def test_hostile_values_over_http_are_each_kept_and_answered_the_same_on_the_retry(
    stack: LocalStack, inspector: Inspector
) -> None:
    ledger = KeptLedger(inspector)
    session = requests.Session()

    @settings(HYPOTHESIS, max_examples=SIZES.hostile_values_http)
    @given(case=hostile_value_cases(stack.token, MAX_BODY_BYTES))
    def run(case: HostileCase) -> None:
        answers = [
            session.post(stack.gateway_url + case.raw_path, params=case.query, headers=case.headers, data=case.raw,
                         timeout=60)
            for _ in range(2)
        ]  # fmt: skip
        first, retry = ((a.status_code, dict(a.headers), a.content) for a in answers)
        ledger.check(case, first, retry)

    run()
    assert ledger.count == SIZES.hostile_values_http


def test_hostile_records_pulled_by_the_sync_are_each_kept_and_every_run_finishes(stack: LocalStack) -> None:
    runs = 0

    @settings(HYPOTHESIS, max_examples=SIZES.hostile_sync_runs)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        nonlocal runs
        runs += 1
        with simulator(workflows=1, calls_per_workflow=HOSTILE_SYNC_CALLS) as sim:
            calls = sim.dataset.calls()
            keys = sorted(sim.call_record(calls[0]))
            for call in calls:
                sim.tamper(call, **data.draw(record_changes(keys)))
            rig = SyncRig(stack, sim, f"hostile-{runs}-{time.monotonic_ns()}")
            report = rig.run()
            assert report.status == "done" and report.cursor is None, report.as_dict()
            # Each record kept: stored as its webhook body, or whole (not readable as a call), or quarantined.
            quarantined: list[dict[str, Any]] | None = None
            for call in calls:
                record = json.loads(dump_json(sim.call_record(call)))  # as the sync's client reads it
                kept = [
                    body_of(rig.archived(event))
                    for body in (webhook_body(record), record)
                    if (event := rig.event(event_id(CALL_TYPE, body))) is not None
                ]
                if kept:
                    assert any(same_json(json.loads(k), webhook_body(record)) or same_json(json.loads(k), record)
                               for k in kept)  # fmt: skip
                else:
                    quarantined = sync_quarantine(rig) if quarantined is None else quarantined
                    bodies = [json.loads(body_of(rig.archived(q))) for q in quarantined]
                    assert any(same_json(b, record) for b in bodies), f"record {calls.index(call)} not kept"
            # The retry: a second job over the same records finds each stored, or quarantines it again.
            again = SyncRig(stack, sim, f"hostile-again-{runs}-{time.monotonic_ns()}").run()
            assert again.status == "done" and again.cursor is None, again.as_dict()
            assert again.new == 0 and again.quarantined == report.quarantined

    run()
    assert runs == SIZES.hostile_sync_runs


# ---------------------------------------------------------------------------------------------- 4. duplicates


def test_fifty_concurrent_senders_of_each_body_store_exactly_one_event_each(
    stack: LocalStack, inspector: Inspector, client: Client
) -> None:
    senders = SIZES.duplicate_senders
    bodies = [_contact(f"dup-{n}-{time.monotonic_ns()}") for n in range(SIZES.duplicate_bodies)]
    outcomes: dict[str, Counter[str]] = {}
    for body in bodies:
        raw = json.dumps(body).encode()
        start = threading.Barrier(senders)

        def send(_: int, raw: bytes = raw, start: threading.Barrier = start) -> requests.Response:
            start.wait(timeout=60)
            return requests.post(
                stack.url(DIALER, with_token=True), data=raw, headers={"content-type": "application/json"}, timeout=60
            )

        with ThreadPoolExecutor(max_workers=senders) as pool:
            answers = list(pool.map(send, range(senders)))
        assert [a.status_code for a in answers] == [200] * senders
        ids = {a.headers["x-event-id"] for a in answers}
        assert len(ids) == 1
        outcomes[ids.pop()] = Counter(a.headers["x-ingest-outcome"] for a in answers)
    for counts in outcomes.values():
        assert counts == Counter({"stored": 1, "duplicate": senders - 1})
    store = inspector.store()
    events = [e for b in bodies for e in store.entity_events("CALL", b["pds"]["body"]["callid"])]
    assert len(events) == len(bodies) and {e["event_id"] for e in events} == set(outcomes)


# ---------------------------------------------------------------------------------------------- 5. archiver killed


def test_an_archiver_killed_mid_batch_is_completed_by_the_retry(
    stack: LocalStack, inspector: Inspector, client: Client, tmp_path: Path
) -> None:
    assert stack.faults is not None
    marker = tmp_path / "marker"
    killed: list[str] = []

    def first_try_killed(event: dict[str, Any]) -> Any:
        """Lambda's first invocation of the batch dies mid-write; the retry runs the handler normally."""
        if killed:
            return stack.invoke("ArchiverFunction", event)
        event_file = tmp_path / "batch.json"
        event_file.write_text(json.dumps(event))
        kill_at_marker(["kill-archiver", "--event", str(event_file)], marker)
        killed.append(marker.read_text())
        raise RuntimeError("the archiver was killed mid-batch")

    # Given deliveries of every type in the table's stream, not archived yet
    poller = stack.stream_poller("ArchiverFunction", invoke=first_try_killed)
    poller.starting_position = "LATEST"
    assert poller.poll_once() == []  # starts after what earlier drills wrote
    samples = all_samples()
    posted: set[str] = set()
    for n in range(SIZES.archiver_kill_deliveries):
        sample = samples[n % len(samples)]
        body = sample.body()
        body["archiver_drill"] = n  # another event each time
        answer = client.post(sample.path, body)
        assert answer.status_code == 200, answer.text
        posted.add(answer.headers["x-event-id"])
    # When the archiver dies after writing the batch's first object, and Lambda retries the batch
    stack.faults.reset_calls()
    batches = poller.drain(timeout=600)
    # Then the killed process wrote exactly one object, and the retry (the same batch) overwrote it
    assert len(killed) == 1 and batches[0].error is not None
    assert batches[1].error is None and batches[1].sequence_numbers[0] == batches[0].sequence_numbers[0]
    puts = [c.resource.split("/", 1)[1] for c in stack.faults.calls("s3", "PutObject")]
    assert puts.count(killed[0]) == 2
    # And every event's line is in the archive exactly once
    counts: Counter[str] = Counter()
    for key in inspector.keys("raw/"):
        if key.endswith(".jsonl.gz"):
            data = inspector.s3.get_object(Bucket=inspector.bucket, Key=key)["Body"].read()
            counts.update(str(line["event_id"]) for line in iter_jsonl_gz(data) if line["event_id"] in posted)
    assert set(counts) == posted and set(counts.values()) == {1}
