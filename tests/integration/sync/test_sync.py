"""The scheduled sync over HTTP: the simulated AIRUDDER tenant on one side, the local stack's moto server
(table, bucket, queue made from template.yaml) on the other, the webhooks through the local gateway."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator

import pytest

from airudder_ingest.base.events import event_id
from airudder_ingest.sync.client import clear_token_cache
from airudder_ingest.sync.job import PULL_ONLY_KEYS, Cursor
from tools.local_aws.stack import LocalStack
from tools.simulator import Fault, call_completed_body

from ..sync_support import CALL_TYPE, Budget, SyncRig, assert_each_call_stored_once, simulator

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


def test_full_sync_from_empty(stack: LocalStack) -> None:
    with simulator(workflows=2, calls_per_workflow=12) as sim:
        rig = SyncRig(stack, sim, "full")
        calls = sim.dataset.calls()
        report = rig.run()

        assert report.status == "done" and report.cursor is None
        assert report.new == len(calls) == 24
        assert report.fetched == report.new + report.known  # windows touch: a record may be read twice
        assert report.unmatched == report.api_errors == 0
        assert_each_call_stored_once(rig, calls)
        assert rig.sources(calls) == {"sync": len(calls)}
        # The event is the call-completion webhook's body, filed like a webhook would be.
        event = rig.event_of(calls[0])
        assert event is not None and event["webhook_type"] == CALL_TYPE and event["route"] == "/webhooks/workflow/call"
        assert event["event_time"].startswith("2026-11-01") and event["source"] == "sync"
        envelope = rig.archived(event)
        assert envelope["path"] == "/service/cloud/workflow/taskdetail"
        # The envelope's body is the webhook body the event id hashes (a replay finds the same event); the
        # record's pull-only keys are kept beside it: nothing fetched is lost.
        assert json.loads(envelope["body"]) == call_completed_body(calls[0], sim.url)
        assert event_id(CALL_TYPE, json.loads(envelope["body"])) == event["event_id"]
        assert envelope["pull_only"] == {k: v for k, v in sim.call_record(calls[0]).items() if k in PULL_ONLY_KEYS}
        state = rig.store.get_state("CALL", calls[0].call_id)
        assert state is not None and state["last_source"] == "sync" and state["workflow_id"] == calls[0].workflow_id
        # Every answered call's recording is queued once; unanswered calls have no link.
        answered = sorted(c.call_id for c in calls if c.answered)
        assert report.recordings_queued == len(answered)
        assert sorted(i for i in rig.queued_call_ids() if i in {c.call_id for c in calls}) == answered
        # Caught up: the watermark is AIRUDDER's "now", and the next run has nothing to ask.
        sync_item = rig.store.get_sync_state("full")
        assert sync_item is not None and "lease_owner" not in sync_item and "cursor" not in sync_item
        assert sync_item["watermark"] == report.watermark
        again = rig.run()
        assert (again.status, again.fetched, again.api_calls) == ("done", 0, 0)


def test_incremental_sync_picks_up_only_new_records(stack: LocalStack) -> None:
    with simulator(workflows=3, calls_per_workflow=10) as sim:
        rig = SyncRig(stack, sim, "incremental", settings={"overlap_seconds": 0})
        first = rig.run()
        assert first.new == 30
        sim.reset_log()

        added = sim.add_calls(4)
        touched = sim.dataset.touch_call(sim.dataset.calls()[0].call_id)  # an old call amended by AIRUDDER
        second = rig.run()

        assert second.status == "done" and second.windows == 1
        assert second.fetched == 5 and second.new == 4 and second.known == 1
        assert_each_call_stored_once(rig, [*added, touched])
        # Only the active workflows and their tasks are asked for, never the whole tenant again.
        assert sim.request_count("workflow_list") == 1
        assert sim.request_count("outbound_task_list") == len({c.workflow_id for c in [*added, touched]})
        assert second.api_calls == sim.request_count()


def test_a_record_seen_by_webhook_and_by_sync_is_stored_once(stack: LocalStack) -> None:
    with simulator(workflows=1, calls_per_workflow=10) as sim:
        rig = SyncRig(stack, sim, "both")
        calls = sim.dataset.calls()
        pushed = sim.push_webhooks(stack.gateway_url, token=stack.token, kinds=("call",), retry_delay=0.05)
        assert pushed.delivered == len(calls)
        webhook_archives = {c.call_id: rig.archived(rig.event_of(c) or {}) for c in calls}

        report = rig.run()

        assert report.new == 0 and report.known == report.fetched >= len(calls)  # windows overlap a little
        assert_each_call_stored_once(rig, calls)
        assert rig.sources(calls) == {"webhook": len(calls)}
        for call in calls:
            state = rig.store.get_state("CALL", call.call_id)
            assert state is not None and state["last_source"] == "webhook"  # the first writer's record
            # The webhook's envelope (the body byte for byte as sent) is never replaced by the sync's.
            assert rig.archived(rig.event_of(call) or {}) == webhook_archives[call.call_id]
        # The webhooks queued the recordings already: the sync does not queue them again.
        assert report.recordings_queued == 0


def test_dropped_webhooks_are_recovered_by_the_sync(stack: LocalStack) -> None:
    with simulator(workflows=2, calls_per_workflow=10) as sim:
        rig = SyncRig(stack, sim, "dropped")
        calls = sim.dataset.calls()
        pushed = sim.push_webhooks(stack.gateway_url, token=stack.token, kinds=("call",), drop_every=3)
        assert pushed.skipped == len(pushed.skipped_call_ids) == 6

        report = rig.run()

        assert report.new == 6 and report.known == report.fetched - 6
        assert_each_call_stored_once(rig, calls)
        assert rig.sources(calls) == {"webhook": len(calls) - 6, "sync": 6}
        assert {c.call_id for c in calls if (rig.event_of(c) or {}).get("source") == "sync"} == pushed.skipped_call_ids
        # Only the recordings of the calls the webhooks missed are queued by the sync.
        missed_answered = {c.call_id for c in calls if c.answered and c.call_id in pushed.skipped_call_ids}
        assert report.recordings_queued == len(missed_answered)


def test_token_expiry_mid_run_is_renewed_once(stack: LocalStack) -> None:
    with simulator(workflows=2, calls_per_workflow=8) as sim:
        rig = SyncRig(stack, sim, "token")
        sim.inject("task_detail", Fault.expire_tokens())  # every token dies on the first task-detail call

        report = rig.run()

        assert report.status == "done" and report.new == 16
        assert report.token_renewals == 1
        assert sim.request_count("auth") == 2  # the first token, then one renewal
        assert sim.request_count("task_detail", 401) == 1


def test_rate_limits_and_server_errors_are_retried_and_the_run_completes(stack: LocalStack) -> None:
    with simulator(workflows=2, calls_per_workflow=8) as sim:
        rig = SyncRig(stack, sim, "retries")
        sim.inject("workflow_list", Fault.rate_limit(retry_after=0, times=2))
        sim.inject("outbound_task_list", Fault.server_error(502))
        sim.inject("task_detail", Fault.server_error(503, times=2), Fault.rate_limit(retry_after=0))

        report = rig.run()

        assert report.status == "done" and report.new == 16 and report.api_errors == 0
        assert report.api_retries == 6
        assert sim.request_count(status=429) == 3 and sim.request_count(status=502) + sim.request_count(status=503) == 3
        assert_each_call_stored_once(rig, sim.dataset.calls())


def test_an_api_failure_stops_the_run_and_the_next_run_resumes(stack: LocalStack) -> None:
    with simulator(workflows=2, calls_per_workflow=16) as sim:  # 8 calls per task: 2 pages of 4
        rig = SyncRig(stack, sim, "failure", api={"max_retries": 1, "page_size": 4})
        calls = sim.dataset.calls()
        # The first page is answered, the second fails on its try and its one retry.
        sim.inject("task_detail", Fault.slow(0.0), Fault.server_error(500, times=2))

        stopped = rig.run()

        assert stopped.status == "api_error" and stopped.api_errors == 1 and stopped.error
        assert stopped.cursor is not None and Cursor.from_json(stopped.cursor).page == 2
        assert stopped.new == 4  # the first page got stored
        saved = rig.store.get_sync_state("failure")
        assert saved is not None and "lease_owner" not in saved and saved["cursor"] == stopped.cursor

        resumed = rig.run()

        assert resumed.status == "done"
        assert stopped.new + resumed.new == len(calls)
        assert_each_call_stored_once(rig, calls)


def test_a_run_stopped_by_its_time_budget_resumes_without_gaps_or_duplicates(stack: LocalStack) -> None:
    page_size = 3
    with simulator(workflows=2, calls_per_workflow=14) as sim:
        rig = SyncRig(stack, sim, "budget", api={"page_size": page_size})
        calls = sim.dataset.calls()
        reports = []
        for _ in range(30):
            engine = rig.engine()
            # Each run may make 4 AIRUDDER requests before its remaining time drops under the margin.
            budget = Budget(engine.client.counter, calls=4, margin_ms=int(rig.sync_settings.time_margin_seconds * 1000))
            reports.append(report := rig.run(engine, budget))
            if report.status == "done":
                break
            assert report.status == "budget" and report.cursor is not None

        assert len(reports) > 5 and reports[-1].status == "done"
        assert sum(r.new for r in reports) == len(calls)
        assert_each_call_stored_once(rig, calls)
        # A resumed task reads its last page again (records may have left the window since); nothing else
        # is read twice except what consecutive windows share.
        resumes = sum(1 for r in reports[:-1] if r.cursor and Cursor.from_json(r.cursor).last_page_len)
        reference = SyncRig(stack, sim, "budget-reference", api={"page_size": page_size}).run()  # one long run
        assert reference.status == "done" and reference.known == reference.fetched
        assert reference.fetched <= sum(r.fetched for r in reports) <= reference.fetched + resumes * page_size
        print(f"{len(reports)} runs, {resumes} resumed part-way, {sum(r.fetched for r in reports)} records read")


def test_overlapping_runs_do_not_double_the_work(stack: LocalStack) -> None:
    with simulator(workflows=2, calls_per_workflow=8) as sim:
        rig = SyncRig(stack, sim, "lease")
        busy = Fault.hold()  # the first run stays inside the API, holding its lease, until released
        sim.inject("task_detail", busy)
        results: dict[str, object] = {}
        first = threading.Thread(target=lambda: results.update(first=rig.run()))
        first.start()
        try:
            assert busy.arrived.wait(timeout=120), "the first run never reached the API"
            assert (rig.store.get_sync_state("lease") or {}).get("lease_owner")
            second_engine = rig.engine()
            second = rig.run(second_engine)
        finally:
            busy.release.set()
            first.join(timeout=120)

        assert second.status == "lease_busy" and second.fetched == 0 and second.api_calls == 0
        done = results["first"]
        assert getattr(done, "status", None) == "done" and getattr(done, "new", None) == 16
        assert_each_call_stored_once(rig, sim.dataset.calls())
        item = rig.store.get_sync_state("lease")
        assert item is not None and "lease_owner" not in item  # released at the end


def test_an_expired_lease_is_taken_over(stack: LocalStack) -> None:
    with simulator(workflows=1, calls_per_workflow=6) as sim:
        rig = SyncRig(stack, sim, "stale-lease")
        now_ms = int(time.time() * 1000)
        # A run that died an hour ago left its lease behind; one that holds a live lease blocks.
        assert rig.store.acquire_sync_lease("stale-lease", "dead-run", now_ms=now_ms - 3_600_000, until_ms=now_ms - 1)
        report = rig.run()
        assert report.status == "done" and report.new == 6

        assert rig.store.acquire_sync_lease("stale-lease", "live-run", now_ms=now_ms, until_ms=now_ms + 600_000)
        blocked = rig.run()
        assert blocked.status == "lease_busy"
        # The dead run cannot write over the live one's progress (the writes are fenced by the lease).
        assert not rig.store.save_sync_progress("stale-lease", "dead-run", watermark="2000-01-01T00:00:00.000Z")
        assert (rig.store.get_sync_state("stale-lease") or {})["watermark"] == report.watermark


def test_records_that_cannot_be_matched_are_still_stored(stack: LocalStack) -> None:
    with simulator(workflows=1, calls_per_workflow=4) as sim:
        rig = SyncRig(stack, sim, "unmatched")
        # AIRUDDER sends a record that names no call and no case (the simulator's records always do):
        # the mapping is then told to drop the ids as if they were pull-only keys.
        rig.sync_settings = rig.sync_settings.model_copy(
            update={"pull_only_keys": (*rig.sync_settings.pull_only_keys, "call_id", "case_id")}
        )
        report = rig.run()
        assert report.status == "done" and report.unmatched == report.new == 4
        scan = (
            rig.stack.boto3_client("dynamodb")
            .get_paginator("scan")
            .paginate(
                TableName=rig.table,
                FilterExpression="workflow_id = :w AND item_type = :t",
                ExpressionAttributeValues={":w": {"S": sim.dataset.workflows()[0].workflow_id}, ":t": {"S": "event"}},
            )
        )
        stored = [item for page in scan for item in page["Items"]]
        assert len(stored) == 4
        assert {i["webhook_type"]["S"] for i in stored} == {CALL_TYPE}
        assert {i["source"]["S"] for i in stored} == {"sync"}
        assert {i["entity_kind"]["S"] for i in stored} == {"DELIVERY"}  # each kept whole, as its own entity


def test_the_scheduled_lambda_syncs_into_the_stack(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployed wiring: SyncFunction's handler, its environment from template.yaml, its secret, on
    the wall clock (the simulated tenant's calls are from the last few hours)."""
    local = stack
    with simulator(recent=True, workflows=2, calls_per_workflow=6) as sim:
        assert sim.dataset.latest_update < dt.datetime.now(dt.UTC)
        # Before the first invocation imports the handler (no other test of this module invokes it).
        monkeypatch.setenv("AIRUDDER_API_BASE_URL", sim.url)
        monkeypatch.setenv("AIRUDDER_API_SECRET_CACHE_SECONDS", "0")
        monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
        secret = local.resources["AirudderApiSecret"]["Ref"]
        assert local.faults is not None

        unconfigured = local.run_schedule("SyncFunction")  # the template's placeholders are still there
        assert unconfigured["status"] == "config_error" and "placeholder" in unconfigured["error"]
        assert sim.request_count() == 0

        local.boto3_client("secretsmanager").put_secret_value(
            SecretId=secret, SecretString=f'{{"APPKey": "{sim.app_key}", "APPSecret": "{sim.app_secret}"}}'
        )
        local.faults.reset_calls()
        report = local.run_schedule("SyncFunction")

        assert report["status"] == "done" and report["new"] == 12 and report["windows"] >= 1
        rig = SyncRig(local, sim, "workflow-calls")
        assert_each_call_stored_once(rig, sim.dataset.calls())
        assert rig.sources(sim.dataset.calls()) == {"sync": 12}
        assert local.faults.count("dynamodb", "PutItem") == 12  # one event item (with its envelope) per new event
        assert local.faults.count("s3", "PutObject") == 0  # the archiver writes the archive
