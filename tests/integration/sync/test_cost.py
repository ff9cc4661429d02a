"""What a sync run costs in AIRUDDER requests grows with the records that changed since the last run,
not with everything the tenant holds (bench/sync_bench.py measures the same at 1,000 and 10,000)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airudder_ingest.base.events import iso_utc
from airudder_ingest.sync.client import clear_token_cache
from tools.local_aws.stack import LocalStack
from tools.simulator import AirudderSimulator

from ..sync_support import SyncRig, simulator

pytestmark = pytest.mark.integration

_LISTINGS = ("workflow_list", "outbound_task_list", "task_detail")


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


def synced_tenant(stack: LocalStack, sim: AirudderSimulator, job: str, **api: Any) -> SyncRig:
    """A rig whose job has synced everything the tenant holds so far (its watermark is past it)."""
    rig = SyncRig(stack, sim, job, settings={"overlap_seconds": 0}, api=api)
    caught_up = sim.dataset.latest_update + dt.timedelta(seconds=1)
    assert rig.store.set_sync_watermark(job, iso_utc(caught_up), now_ms=int(time.time() * 1000))
    return rig


def test_api_calls_grow_with_changed_records_not_with_records_held(stack: LocalStack) -> None:
    calls_made: dict[int, dict[str, int]] = {}
    for held in (100, 1000):
        with simulator(workflows=held // 50, calls_per_workflow=50) as sim:
            rig = synced_tenant(stack, sim, f"cost-held-{held}")
            changed = sim.add_calls(10)  # ten new calls in the newest workflow
            clear_token_cache()
            report = rig.run()
            assert report.status == "done" and report.fetched == report.new == len(changed)
            calls_made[held] = {endpoint: sim.request_count(endpoint) for endpoint in ("auth", *_LISTINGS)}
            assert report.api_calls == sum(calls_made[held].values())
    assert calls_made[100] == calls_made[1000]
    # auth + workflow list + the workflow's outbound tasks + one details page per task (2 nodes).
    assert calls_made[100] == {"auth": 1, "workflow_list": 1, "outbound_task_list": 1, "task_detail": 2}


def test_more_changes_cost_more_calls(stack: LocalStack) -> None:
    calls_made: dict[int, int] = {}
    for changed in (10, 40):
        with simulator(workflows=4, calls_per_workflow=50) as sim:
            rig = synced_tenant(stack, sim, f"cost-changed-{changed}", page_size=10)
            # Changes spread over every workflow: AIRUDDER amends older calls too.
            for call in sim.dataset.calls()[::10][: changed // 2]:
                sim.dataset.touch_call(call.call_id)
            sim.add_calls(changed - changed // 2)
            clear_token_cache()
            report = rig.run()
            assert report.fetched == changed  # (the held calls were never stored here: all count as new)
            calls_made[changed] = report.api_calls
    assert calls_made[40] > calls_made[10]
