"""Ingest figures of `make bench`: overhead, throughput and AWS calls / item sizes per delivery.

Each figure is a ratio of two things measured side by side in the same run on the embedded moto server
(absolute times on this machine say little about AWS):

overhead    the webhook handler invoked in-process with an API Gateway event (moto over HTTP) against
            the bare I/O it needs: the same PutObject and DynamoDB writes (and SQS message, if any), made
            with plain boto3 clients on the same server. Interleaved ABAB: pair i replays exactly the
            requests the handler made in pair i (keys renamed so that nothing collides).
throughput  deliveries per second through the local gateway with N concurrent senders against the
            moto server's own PutItem rate with N concurrent writers (the same event item).
calls       AWS calls per delivery from the fault proxy's call log, and the DynamoDB items written
            (sizes, indexes) for a simulated AIRUDDER mix, for the cost figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    Capture,
    LogSink,
    SampleDelivery,
    function_output,
    index_entry_size,
    item_size,
    median,
    ms,
    pipeline_clients,
    quantile,
    renamed,
    replay,
    simulated_deliveries,
    table_indexes,
    to_jsonable,
    write_units,
)


def _event_for(stack: Any, delivery: SampleDelivery) -> tuple[str, dict[str, Any]]:
    from tools.gateway import build_event, match_route

    found = match_route(stack.route_objects, "POST", delivery.path)
    if found is None:
        raise RuntimeError(f"no route for {delivery.path}")
    route = found[0]
    event = build_event(
        "POST",
        delivery.path,
        {"token": stack.token},
        {"content-type": "application/json", "user-agent": "Airudder"},
        delivery.body,
        route,
        source_ip="127.0.0.1",
    )
    return route.function_id, event


def _bare_clients() -> dict[str, Any]:
    """Plain boto3 clients, configured as the pipeline's (same endpoint and retry settings from the
    environment, same timeouts)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(connect_timeout=2, read_timeout=5)
    return {name: session.client(name, config=config) for name in ("dynamodb", "s3", "sqs")}


def measure_overhead(pairs: int = 300, warmup: int = 30, time_limit: float = 90.0) -> dict[str, Any]:
    """Handler vs bare I/O, ABAB; see the module docstring.

    The deliveries are call completions of distinct calls, so that every one is a new event of a new
    entity: the handler's conditional writes all succeed, as the replayed ones do (a redelivery or an
    older status would make the handler's writes cheaper than the replay's).
    """
    from tools.local_aws import DEFAULT_TOKEN
    from tools.local_stack import LocalStack

    deliveries = simulated_deliveries(calls=max(pairs + warmup + 1, 50), kinds=("call",))
    handler_s: list[float] = []
    bare_s: list[float] = []
    handler_cpu: list[float] = []
    bare_cpu: list[float] = []
    operations: Counter[str] = Counter()
    logged_chars = 0
    sink = LogSink()
    with LocalStack(with_fault_proxy=False, token=DEFAULT_TOKEN) as stack, function_output(sink):
        events = [_event_for(stack, d) for d in deliveries]
        function_id, event = events[0]
        stack.invoke(function_id, event)  # import and initialise: the cold start is another figure
        capture = Capture()
        capture.attach(pipeline_clients())
        bare = _bare_clients()
        started = time.monotonic()
        for n, (function_id, event) in enumerate(events[1 : 1 + warmup + pairs], start=1):
            if time.monotonic() - started > time_limit:
                break
            capture.take()
            chars_before = sink.chars
            c0, t0 = time.thread_time(), time.perf_counter()
            answer = stack.invoke(function_id, event)
            t1, c1 = time.perf_counter(), time.thread_time()
            if answer.get("statusCode") != 200 or answer["headers"].get("x-ingest-outcome") != "stored":
                raise RuntimeError(f"the handler answered {answer.get('statusCode')}: {answer.get('body')}")
            calls = [c for c in capture.take() if c.operation != "GetSecretValue"]
            replayed = [renamed(c, str(n)) for c in calls]
            c2, t2 = time.thread_time(), time.perf_counter()
            replay(bare, replayed)
            t3, c3 = time.perf_counter(), time.thread_time()
            if n > warmup:
                handler_s.append(t1 - t0)
                bare_s.append(t3 - t2)
                handler_cpu.append(c1 - c0)
                bare_cpu.append(c3 - c2)
                operations.update(f"{c.service}:{c.operation}" for c in calls)
                logged_chars += sink.chars - chars_before
    measured = len(handler_s)
    if not measured:
        raise RuntimeError("no pair was measured")
    ratio = median(handler_s) / median(bare_s)
    return {
        "ratio": round(ratio, 3),
        "target": 1.15,
        "met": ratio <= 1.15,
        "pairs": measured,
        "handler_median_ms": ms(median(handler_s)),
        "handler_p90_ms": ms(quantile(handler_s, 0.9)),
        "bare_io_median_ms": ms(median(bare_s)),
        "bare_io_p90_ms": ms(quantile(bare_s, 0.9)),
        "mean_pair_ratio": round(sum(h / b for h, b in zip(handler_s, bare_s, strict=True)) / measured, 3),
        # CPU of the calling thread only (moto serves from threads of its own): what the handler adds to
        # boto3's own request work. On Lambda, CPU scales with memory (256 MB: a fraction of a vCPU).
        "client_cpu_ratio": round(median(handler_cpu) / median(bare_cpu), 3),
        "handler_cpu_median_ms": ms(median(handler_cpu)),
        "bare_io_cpu_median_ms": ms(median(bare_cpu)),
        "calls_per_delivery": {k: round(v / measured, 3) for k, v in sorted(operations.items())},
        "log_bytes_per_delivery": round(logged_chars / measured),
        "deliveries": "simulated AIRUDDER call completions, each of a distinct call",
    }


# ---------------------------------------------------------------------------------------------- throughput


def _load(args: list[str], time_limit: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        subprocess.run(  # noqa: S603 - this interpreter and our own module
            [sys.executable, "-m", "bench.load_client", *args, "--result-file", str(out)],
            cwd=REPO_ROOT,
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=time_limit + 120,
            check=True,
        )
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def measure_throughput(
    concurrencies: tuple[int, ...] = (1, 4, 16),
    per_round: int = 100,
    rounds: int = 2,
    time_limit: float = 40.0,
) -> dict[str, Any]:
    """Deliveries/s through the gateway vs PutItem/s on moto, same concurrency, in alternating rounds;
    and, to tell the stack's share from moto's, vs the bare I/O of whole deliveries replayed with boto3.

    The deliveries are call completions of distinct calls (each a new event of a new entity, so that
    every replayed request does the same work as the handler's)."""
    from tools.local_aws import DEFAULT_TOKEN
    from tools.local_stack import LocalStack

    results: dict[str, Any] = {}
    with (
        LocalStack(with_fault_proxy=False, token=DEFAULT_TOKEN) as stack,
        tempfile.TemporaryDirectory() as folder,
        function_output(),
    ):
        table = stack.resources["EventsTable"]["Ref"]
        samples = 10
        needed = sum((per_round + 2 * n) * rounds for n in concurrencies) + samples + 1
        deliveries = simulated_deliveries(calls=needed, kinds=("call",))
        # What the handler asks of AWS for a few deliveries: the writers' item and the replayed I/O.
        stack.invoke(*_event_for(stack, deliveries[0]))
        capture = Capture()
        capture.attach(pipeline_clients())
        captured = []
        for delivery in deliveries[1 : 1 + samples]:
            stack.invoke(*_event_for(stack, delivery))
            captured.append([c for c in capture.take() if c.operation != "GetSecretValue"])
        item = next(c.params["Item"] for c in captured[0] if c.operation == "PutItem")
        item_file = Path(folder) / "item.json"
        item_file.write_text(json.dumps(item))
        calls_file = Path(folder) / "calls.json"
        calls_file.write_text(
            json.dumps([[to_jsonable(c.__dict__) for c in calls] for calls in captured]),
        )
        cursor = 1 + samples
        for n in concurrencies:
            runs: dict[str, list[dict[str, Any]]] = {"gateway": [], "putitem": [], "replay": []}
            for r in range(rounds):
                warmup = 2 * n
                chunk = deliveries[cursor : cursor + warmup + per_round]
                cursor += len(chunk)
                bodies_file = Path(folder) / f"bodies-{n}-{r}.json"
                bodies_file.write_text(json.dumps([[d.path, d.body.decode()] for d in chunk]))
                common = ["--concurrency", str(n), "--count", str(per_round), "--warmup", str(warmup)]
                common += ["--time-limit", str(time_limit), "--region", stack.region, "--prefix", f"{n}-{r}"]
                senders = ["gateway", "--url", stack.gateway_url, "--token", stack.token, "--bodies", str(bodies_file)]
                writers = ["putitem", "--endpoint", stack.moto_url, "--table", table, "--item", str(item_file)]
                bare = ["replay", "--endpoint", stack.moto_url, "--calls", str(calls_file)]
                runs["gateway"].append(_load([*senders, *common], time_limit))
                runs["putitem"].append(_load([*writers, *common], time_limit))
                runs["replay"].append(_load([*bare, *common], time_limit))
            rates = {name: sum(x["ok"] for x in done) / sum(x["seconds"] for x in done) for name, done in runs.items()}
            results[str(n)] = {
                "ratio": round(rates["gateway"] / rates["putitem"], 3),
                "deliveries_per_s": round(rates["gateway"], 1),
                "putitem_per_s": round(rates["putitem"], 1),
                "bare_io_deliveries_per_s": round(rates["replay"], 1),
                "ratio_to_bare_io": round(rates["gateway"] / rates["replay"], 3),
                "deliveries": sum(x["ok"] for x in runs["gateway"]),
                "delivery_errors": sum(x["count"] - x["ok"] for x in runs["gateway"]),
                "errors_other": sum(x["count"] - x["ok"] for x in runs["putitem"] + runs["replay"]),
            }
    return {"by_concurrency": results, "rounds": rounds, "per_round": per_round}


# ---------------------------------------------------------------------------------------------- calls and items


def measure_calls_and_items(calls: int = 120, concurrency: int = 4) -> dict[str, Any]:
    """AWS calls per delivery (fault proxy call log) and the DynamoDB writes, for the simulated mix
    pushed through the gateway; sizes are computed from the items as stored."""
    from tools.local_aws import DEFAULT_TOKEN
    from tools.local_stack import LocalStack
    from tools.simulator import Dataset, DatasetConfig, WebhookPusher

    dataset = Dataset(DatasetConfig(seed=11, workflows=4, calls_per_workflow=max(1, calls // 4)))
    with function_output(), LocalStack(with_fault_proxy=True, token=DEFAULT_TOKEN) as stack:
        assert stack.faults is not None
        pusher = WebhookPusher(
            stack.gateway_url,
            recording_base_url="https://recordings.airudder.com",
            token=stack.token,
            concurrency=concurrency,
            retry_delay=0.5,
        )
        stack.faults.reset_calls()
        report = pusher.push(dataset.calls())
        if report.delivered != report.planned:
            raise RuntimeError(f"not every delivery was stored: {report.summary()}")
        counted = Counter(f"{c.service}:{c.operation}" for c in stack.faults.calls() if c.service != "moto")
        ddb = stack.boto3_client("dynamodb")
        table = stack.resources["EventsTable"]["Ref"]
        description = ddb.describe_table(TableName=table)["Table"]
        items = [item for page in ddb.get_paginator("scan").paginate(TableName=table) for item in page.get("Items", [])]
        assert stack.functions is not None
        memory_mb = int(stack.functions.spec(stack.route_objects[0].function_id).memory_mb)
    delivered = report.delivered
    table_keys, indexes = table_indexes(description)
    states = {item["pk"]["S"]: item for item in items if item.get("sk", {}).get("S") == "STATE"}
    events = [item for item in items if item.get("sk", {}).get("S") == "EV"]
    wru: Counter[str] = Counter()
    index_hits: Counter[str] = Counter()
    sizes: dict[str, list[int]] = {"event": [], "state": []}
    for event in events:
        size = item_size(event)
        sizes["event"].append(size)
        wru["event item"] += write_units(size)
        for index in indexes:
            entry = index_entry_size(event, table_keys, index)
            if entry is not None:
                wru[f"event in {index.name}"] += write_units(entry)
                index_hits[f"event:{index.name}"] += 1
        state = states.get(event.get("entity", {}).get("S", ""))
        if state is None:  # a stateless kind: the event is all there is
            continue
        # An UpdateItem is metered on the larger of the item before and after: the final item here.
        size = item_size(state)
        sizes["state"].append(size)
        wru["state item"] += write_units(size)
        for index in indexes:
            entry = index_entry_size(state, table_keys, index)
            if entry is not None:
                wru[f"state in {index.name}"] += write_units(entry)
                index_hits[f"state:{index.name}"] += 1
    return {
        "deliveries": delivered,
        "push": report.summary(),
        "calls_per_delivery": {k: round(v / delivered, 3) for k, v in sorted(counted.items())},
        "calls_total": dict(sorted(counted.items())),
        "wru_per_delivery": {k: round(v / delivered, 3) for k, v in sorted(wru.items())},
        "wru_per_delivery_total": round(sum(wru.values()) / delivered, 3),
        "index_entries_per_delivery": {k: round(v / delivered, 3) for k, v in sorted(index_hits.items())},
        "item_bytes_median": {k: int(median(v)) if v else 0 for k, v in sizes.items()},
        "function_memory_mb": memory_mb,
    }
