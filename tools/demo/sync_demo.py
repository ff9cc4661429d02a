"""The demo's scheduled-sync section (`make demo`, after the samples): webhooks that never arrive are
filled in by the sync.

A small simulated AIRUDDER tenant (tools/simulator) pushes its call-completion webhooks into the
running local stack, with some dropped on purpose; then SyncFunction runs as its schedule would run it,
reading the tenant's pull API. The summary checks every call the tenant made against DynamoDB.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from typing import Any, TextIO

from tools.local_aws.stack import LocalStack
from tools.simulator import AirudderSimulator, Dataset, DatasetConfig, call_completed_body

APP_KEY, APP_SECRET = "demo-app-key", "demo-app-secret"
CALL_TYPE = "workflow.call"


def _line(out: TextIO, text: str = "") -> None:
    out.write(text + "\n")


def run_sync_demo(
    stack: LocalStack, out: TextIO, *, workflows: int = 3, calls_per_workflow: int = 12, drop_every: int = 4
) -> dict[str, Any]:
    """Runs the section; returns its numbers (the summary printed is made of them)."""
    from airudder_ingest.base.events import event_id
    from airudder_ingest.storage.store import EventStore

    # The tenant's (synthetic) clock starts three hours ago: its calls lie inside the sync's first look back.
    epoch = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)
    dataset = Dataset(DatasetConfig(seed=2026, workflows=workflows, calls_per_workflow=calls_per_workflow, epoch=epoch))
    store = EventStore(stack.resources["EventsTable"]["Ref"], stack.boto3_client("dynamodb"))
    with AirudderSimulator(app_key=APP_KEY, app_secret=APP_SECRET, dataset=dataset) as sim:
        calls = sim.dataset.calls()
        _line(out, "\nScheduled sync: webhooks that never arrive are filled in from AIRUDDER's API")
        _line(
            out,
            f"  A simulated AIRUDDER tenant at {sim.url}: {workflows} workflows, {len(calls)} calls"
            f" ({sum(c.answered for c in calls)} answered, with a recording).",
        )
        # SyncFunction reads AIRUDDER here (set before its first invocation imports the handler), with
        # the tenant's credentials in the stack's AIRUDDER API secret.
        os.environ["AIRUDDER_API_BASE_URL"] = sim.url
        stack.boto3_client("secretsmanager").put_secret_value(
            SecretId=stack.resources["AirudderApiSecret"]["Ref"],
            SecretString=json.dumps({"APPKey": APP_KEY, "APPSecret": APP_SECRET}),
        )

        if os.environ.get("POWERTOOLS_METRICS_DISABLED") == "true":
            # The quiet demo never flushes metrics, but Powertools prints its (process-wide) metric set
            # once it holds 100 values: drop what the samples left there.
            from aws_lambda_powertools import Metrics

            Metrics().clear_metrics()
        pushed = sim.push_webhooks(
            stack.gateway_url, token=stack.token, kinds=("call",), drop_every=drop_every, retry_delay=0.05
        )
        _line(
            out,
            f"  Webhooks: {pushed.delivered} call-completion webhooks delivered, {pushed.skipped} dropped on"
            f" purpose (every {drop_every}th), {pushed.dropped} given up after retries.",
        )

        report = stack.run_schedule("SyncFunction")
        _line(
            out,
            f"  Sync run ({report['status']}): {report['windows']} window(s) read, {report['fetched']} call records"
            f" fetched, {report['new']} new, {report['known']} already known, {report['unmatched']} unmatched,"
            f" {report['recordings_queued']} recordings queued; {report['api_calls']} AIRUDDER requests,"
            f" {report['api_errors']} API errors.",
        )

        sources: Counter[str] = Counter()
        events_per_call: Counter[int] = Counter()
        with_state = 0
        for call in calls:
            event = store.find_event(event_id(CALL_TYPE, call_completed_body(call, sim.url)))
            sources[str(event.get("source")) if event else "missing"] += 1
            events_per_call[len(list(store.entity_events("CALL", call.call_id)))] += 1
            with_state += store.get_state("CALL", call.call_id) is not None
        stored = len(calls) - sources["missing"]
        _line(
            out,
            f"  DynamoDB: {stored} of {len(calls)} calls stored, {with_state} with their state;"
            f" {sources['webhook']} came from webhooks, {sources['sync']} only from the sync;"
            f" events per call: {dict(sorted(events_per_call.items()))}.",
        )
        verdict = "every call is there, once" if stored == with_state == len(calls) == events_per_call[1] else "MISSING"
        _line(out, f"  -> {verdict}. Watermark now {report['watermark']} (the next run starts 5 minutes before it).")

        again = stack.run_schedule("SyncFunction")
        _line(
            out,
            f"  A second run right away ({again['status']}): {again['fetched']} records fetched, {again['new']} new,"
            f" {again['api_calls']} AIRUDDER requests: only what changed since the watermark is asked for.",
        )
    return {
        "calls": len(calls),
        "delivered": pushed.delivered,
        "skipped": pushed.skipped,
        "sources": dict(sources),
        "with_state": with_state,
        "events_per_call": dict(events_per_call),
        "report": report,
        "second_run": again,
    }
