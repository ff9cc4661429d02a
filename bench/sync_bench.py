"""The sync's AIRUDDER requests per changed record, for tenants holding 1,000 and 10,000 call records.

    .venv/bin/python bench/sync_bench.py [--held 1000 10000] [--changed 10 100] [--json out.json]

For each size: a simulated tenant (tools/simulator) holding that many calls (100 per workflow, two
node tasks each), already synced (the job's watermark is past everything it holds). Then some records
change, half of them new calls in the newest workflow and half amendments of older calls spread over
the tenant, and one sync run (airudder_ingest.sync.job, against the local stack on moto) fetches them.
Printed: the requests made (token included), by endpoint, and per changed record. The count should
depend on the changes and on how many workflows and tasks they touch, never on what the tenant holds.
Not part of `make test`; tests/integration/sync/test_cost.py checks the same at 100 and 1,000.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ENDPOINTS = ("auth", "workflow_list", "outbound_task_list", "task_detail")
AMENDED_WORKFLOWS = 5


def measure(held: int, changed: int, per_workflow: int = 100) -> dict[str, Any]:
    from airudder_ingest.base.events import iso_utc
    from airudder_ingest.sync.client import clear_token_cache
    from tests.integration.sync_support import SyncRig, simulator
    from tools.local_aws.stack import LocalStack

    with (
        LocalStack(with_fault_proxy=False) as stack,
        simulator(workflows=max(held // per_workflow, 1), calls_per_workflow=min(held, per_workflow)) as sim,
    ):
        job = f"bench-{held}-{changed}"
        rig = SyncRig(stack, sim, job, settings={"overlap_seconds": 0})
        caught_up = sim.dataset.latest_update + dt.timedelta(seconds=1)
        rig.store.set_sync_watermark(job, iso_utc(caught_up), now_ms=int(time.time() * 1000))
        # Amendments spread over the first few workflows, the same ones whatever the tenant holds.
        amended = changed // 2
        spread = [w.workflow_id for w in sim.dataset.workflows()[:AMENDED_WORKFLOWS]]
        per_workflow_calls = [[c for c in sim.dataset.calls() if c.workflow_id == w] for w in spread]
        for call in [c for row in zip(*per_workflow_calls, strict=False) for c in row][:amended]:
            sim.dataset.touch_call(call.call_id)
        sim.add_calls(changed - amended)
        sim.reset_log()
        clear_token_cache()
        started = time.perf_counter()
        report = rig.run()
        seconds = time.perf_counter() - started
        if report.status != "done" or report.fetched != changed:
            raise RuntimeError(f"unexpected run: {report}")
        by_endpoint = {endpoint: sim.request_count(endpoint) for endpoint in ENDPOINTS}
        touched_workflows = len({c.workflow_id for c in sim.dataset.calls() if c.update_time > caught_up})
        return {
            "held": held,
            "changed": changed,
            "workflows_held": len(sim.dataset.workflows()),
            "workflows_touched": touched_workflows,
            "api_calls": report.api_calls,
            "by_endpoint": by_endpoint,
            "api_calls_per_changed_record": round(report.api_calls / changed, 3),
            "seconds": round(seconds, 2),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--held", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--changed", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    for folder in (REPO, REPO / "layers" / "ingest"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    logging.getLogger("airudder_ingest").setLevel(logging.WARNING)

    results = [measure(held, changed) for changed in args.changed for held in args.held]
    print(f"{'held':>7} {'changed':>8} {'wf touched':>11} {'API calls':>10}   {'by endpoint':<58} {'per changed':>12}")
    for r in results:
        ends = ", ".join(f"{k} {v}" for k, v in r["by_endpoint"].items())
        print(
            f"{r['held']:>7} {r['changed']:>8} {r['workflows_touched']:>11} {r['api_calls']:>10}   {ends:<58}"
            f" {r['api_calls_per_changed_record']:>12}"
        )
    for changed in args.changed:
        counts = {r["held"]: r["api_calls"] for r in results if r["changed"] == changed}
        verdict = "the same" if len(set(counts.values())) == 1 else "NOT the same"
        print(f"{changed} changed records: {verdict} number of API calls whatever the tenant holds {counts}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
