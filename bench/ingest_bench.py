"""Ingest figures of `make bench`: overhead, throughput and AWS calls / item sizes per delivery.

Each figure is a ratio of two things measured side by side in the same run on the embedded moto server
(absolute times on this machine say little about AWS):

overhead    the webhook handler invoked in-process with an API Gateway event (moto over HTTP) against
            the bare I/O it needs: the same PutObject and DynamoDB writes (and SQS message, if any), made
            with plain boto3 clients on the same server. Interleaved ABAB: pair i replays exactly the
            requests the handler made in pair i (keys renamed so that nothing collides).
throughput  deliveries per second through the local gateway with N concurrent senders against the
            moto server's own PutItem rate with N concurrent writers (the same event item).
calls       AWS calls per delivery from the fault proxy's call log, for every sample of events/ posted
            through the local gateway, and the items as moto stores them.
items       what a delivery writes (event item with its packed envelope, state item), built by the
            layer's own code from each sample's API Gateway event and sized by DynamoDB's rules; the
            write units per delivery for a known and a new entity (bench/cost.py), for the cost figure.
archive     archive objects per 1,000 deliveries: the archiver function run over the table's stream in
            the batches its event source mapping makes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    Capture,
    LogSink,
    SampleDelivery,
    function_output,
    item_size,
    median,
    ms,
    pipeline_clients,
    quantile,
    renamed,
    replay,
    simulated_deliveries,
    table_indexes,
    template_default,
    template_table,
    to_jsonable,
)


def _event_for(stack: Any, delivery: SampleDelivery) -> tuple[str, dict[str, Any]]:
    from tools.local_aws.gateway import build_event, match_route

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
    from tools.local_aws.moto_server import DEFAULT_TOKEN
    from tools.local_aws.stack import LocalStack

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
    from tools.local_aws.moto_server import DEFAULT_TOKEN
    from tools.local_aws.stack import LocalStack

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
        item_file.write_text(json.dumps(to_jsonable(item)))  # the packed envelope is binary
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


# ---------------------------------------------------------------------------------------------- items of a delivery

SAMPLE_EVENTS = REPO_ROOT / "events" / "apigw"
# The second body size the cost is given at (the "2 KB body").
PADDED_BODY_BYTES = 2_048
# Words of the padding: free text as an agent's note or a chat transcript holds, which zlib shrinks about
# as much as it shrinks the samples' own text (random characters would not shrink at all).
_PAD_TEXT = (
    "customer asked call back tomorrow morning about the payment plan agreed promised transfer before friday "
    "number busy no answer voicemail left message wrong person reached relative said will inform account "
    "balance due date reminder sent whatsapp template delivered read replied thanks please confirm amount "
    "installment reschedule request approved supervisor review pending documents uploaded verified address "
    "office hours weekend holiday discount offer accepted declined dispute escalated ticket closed resolved"
)


@dataclass(frozen=True)
class DeliveryItems:
    """What one delivery writes, as the ingest path's own builders make it (DynamoDB JSON)."""

    name: str
    webhook_type: str
    entity_kind: str
    body_bytes: int
    envelope_bytes: int
    event: dict[str, Any]
    state: dict[str, Any] | None  # None: a stateless kind (the event is all there is)
    state_before: dict[str, Any] | None  # the state a previous event of the same entity left
    recording: bool  # a recording link the recordings queue gets (one SQS message)


def sample_events() -> list[tuple[str, dict[str, Any]]]:
    """The API Gateway events of every sample of events/ (`make events` builds them): the bench's mix."""
    return [
        (str(path.relative_to(SAMPLE_EVENTS)), json.loads(path.read_text()))
        for path in sorted(SAMPLE_EVENTS.rglob("*.json"))
    ]


def padded_event(event: dict[str, Any], size: int, seed: int = 5) -> dict[str, Any] | None:
    """The same delivery with its body grown to `size` bytes by a free-text `notes` string (a key no
    model reads); None when the body is already larger."""
    import random

    body = event["body"].encode() if not event.get("isBase64Encoded") else None
    if body is None or len(body) > size - 16:
        return None
    value = json.loads(body)
    draw = random.Random(seed)  # noqa: S311 - filler text, not a secret
    vocabulary = _PAD_TEXT.split()
    words: list[str] = []
    while True:
        value["notes"] = " ".join(words)
        grown = json.dumps(value, ensure_ascii=False).encode()
        if len(grown) >= size:
            break
        words.append(draw.choice(vocabulary))
    value["notes"] = value["notes"][: len(value["notes"]) - (len(grown) - size)]
    text = json.dumps(value, ensure_ascii=False)
    assert len(text.encode()) == size
    return {**event, "body": text, "headers": {**event["headers"], "content-length": str(size)}}


def delivery_items(name: str, event: dict[str, Any]) -> DeliveryItems:
    """The event item, the state item (and the state a previous event of the entity left) that the
    webhook function writes for `event`: the real parsing, model, record, envelope and item builders,
    with the settings of the template's defaults. No AWS call."""
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from airudder_ingest.base.events import iso_utc
    from airudder_ingest.base.settings import StoreSettings
    from airudder_ingest.edge import apigw
    from airudder_ingest.edge.webhook import _envelope
    from airudder_ingest.models import model_for, read_facts
    from airudder_ingest.record.recorder import EventRecorder
    from airudder_ingest.storage import store
    from airudder_ingest.storage.archive import ClaimChecks

    ttl_days = int(template_default("EventTtlDays") or 0)
    settings = StoreSettings.model_validate(
        {
            "EVENTS_TABLE": "bench",
            "ARCHIVE_BUCKET": "bench",
            "EVENT_TTL_DAYS": ttl_days,
            "DEFAULT_COUNTRY_CODE": template_default("DefaultCountryCode") or "",
            "NAIVE_TIME_OFFSET": template_default("NaiveTimeOffset") or "+00:00",
        }
    )
    recorder = EventRecorder(settings, store.EventStore("bench", None), ClaimChecks("bench", None), None)
    request = apigw.parse_event(event)
    model = model_for(request.route_path, request.path_params)
    if model is None:
        raise RuntimeError(f"no model for {request.route_path}")
    value = json.loads(request.body.decode("utf-8-sig"))
    received = datetime.fromtimestamp(request.received_ms / 1000, UTC)
    rec = recorder.build_record(
        webhook_type=model.webhook_type,
        route=request.route_path,
        value=value,
        facts=read_facts(model, value),
        received_at=iso_utc(received),
        source="webhook",
        request_id=request.request_id,
    )
    blob = _envelope(request).pack()
    if len(blob) > store.MAX_INLINE_ENVELOPE_BYTES:
        raise RuntimeError(f"{name}: the envelope would be a claim check; the bench's mix has none")
    expires = int(received.timestamp()) + settings.event_ttl_days * 86_400 if settings.event_ttl_days else None
    shards = settings.parent_shards
    item = store._to_item(store.event_item(rec, envelope=blob, parent_shards=shards, expires_at=expires))
    state = before = None
    if rec.entity_kind not in store.STATELESS_KINDS:
        now = iso_utc(received)
        fields = store.state_fields(rec, parent_shards=shards, now=now)
        state = store._to_item({"pk": rec.entity, "sk": store.STATE_SK, **fields})
        # The entity's previous event: another id, a minute earlier, the same facts.
        earlier = iso_utc(received - timedelta(minutes=1))
        prior = replace(rec, event_id=f"{int(rec.event_id, 16) ^ 1:032x}", received_at=earlier)
        before = store._to_item(
            {"pk": rec.entity, "sk": store.STATE_SK, **store.state_fields(prior, parent_shards=shards, now=earlier)}
        )
    from airudder_ingest.record.recorder import recording_fits_queue

    return DeliveryItems(
        name=name,
        webhook_type=rec.webhook_type,
        entity_kind=rec.entity_kind,
        body_bytes=len(request.body),
        envelope_bytes=len(blob),
        event=item,
        state=state,
        state_before=before,
        recording=bool(rec.recording_url) and recording_fits_queue(rec),
    )


# ---------------------------------------------------------------------------------------------- calls and items


def measure_calls_and_items(repeats: int = 2) -> dict[str, Any]:
    """AWS calls per delivery, counted on the wire (the fault proxy's call log), for every sample of
    events/ posted through the local gateway `repeats` times (the first post of a body stores it, the
    later ones each a new event of the same entity: the body with a `bench_seq` key no model reads), and
    the items as stored, sized by DynamoDB's rules beside the sizes the builders give (delivery_items)."""
    import requests

    from tools.local_aws.moto_server import DEFAULT_TOKEN
    from tools.local_aws.stack import LocalStack

    samples = sample_events()
    with function_output(), LocalStack(with_fault_proxy=True, token=DEFAULT_TOKEN) as stack:
        assert stack.faults is not None
        stack.faults.reset_calls()
        posted = 0
        with requests.Session() as http:
            for n in range(repeats):
                for name, event in samples:
                    body = event["body"].encode()
                    if n:
                        value = json.loads(body)
                        value["bench_seq"] = n
                        body = json.dumps(value).encode()
                    answer = http.post(
                        stack.url(event["rawPath"], with_token=True),
                        data=body,
                        headers={"content-type": "application/json", "user-agent": event["headers"]["user-agent"]},
                        timeout=30,
                    )
                    if answer.status_code != 200 or answer.headers.get("x-ingest-outcome") != "stored":
                        raise RuntimeError(f"{name}: answered {answer.status_code} {answer.text[:200]}")
                    posted += 1
        counted = Counter(f"{c.service}:{c.operation}" for c in stack.faults.calls() if c.service != "moto")
        ddb = stack.boto3_client("dynamodb")
        table = stack.resources["EventsTable"]["Ref"]
        description = ddb.describe_table(TableName=table)["Table"]
        items = [item for page in ddb.get_paginator("scan").paginate(TableName=table) for item in page.get("Items", [])]
        assert stack.functions is not None
        memory_mb = int(stack.functions.spec(stack.route_objects[0].function_id).memory_mb)
        archive = archive_stream(stack, posted)
        # One batch that is not full: its objects per 1,000 say nothing of the mix (modelled below).
        for partial in ("objects_per_1000_deliveries", "objects_per_1000_deliveries_whole_run", "met", "counted_over"):
            archive.pop(partial)
    table_keys, indexes = table_indexes(description)
    stored = {
        kind: [item_size(i) for i in items if i.get("item_type", {}).get("S") == kind] for kind in ("event", "state")
    }
    built = [delivery_items(name, event) for name, event in samples]
    return {
        "deliveries": posted,
        "samples": len(samples),
        "calls_per_delivery": {k: round(v / posted, 3) for k, v in sorted(counted.items())},
        "calls_total": dict(sorted(counted.items())),
        "item_bytes_median_stored": {k: int(median(v)) if v else 0 for k, v in stored.items()},
        "item_bytes_median_built": {
            "event": int(median([item_size(d.event) for d in built])),
            "state": int(median([item_size(d.state) for d in built if d.state])),
        },
        "stored_items": {k: len(v) for k, v in stored.items()},
        "table_keys": list(table_keys),
        "indexes": [{"name": i.name, "keys": list(i.keys), "projection": i.projection} for i in indexes],
        "function_memory_mb": memory_mb,
        "archive": archive,
        # One batch held every sample (each type and day of the mix): a full batch of this mix, cycling
        # through the samples, holds them all too, so it writes as many objects (modelled, not measured).
        "archive_objects_per_1000_at_full_batches": round(
            1000 * archive["objects"] / archive["records_per_invocation_limit"], 2
        ),
    }


# ---------------------------------------------------------------------------------------------- the archive


# Lambda's limit on an invocation's payload: a stream batch closes before its records pass it.
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024


def stream_batches(records: list[dict[str, Any]], batch_size: int) -> list[list[dict[str, Any]]]:
    """Records (Lambda's JSON) cut into batches as the event source mapping cuts a shard's backlog: at
    `batch_size` records, or before the invocation's payload would pass LAMBDA_PAYLOAD_BYTES."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = len(b'{"Records":[]}')
    for record in records:
        record_bytes = len(json.dumps(record, separators=(",", ":")).encode()) + 1
        if current and (len(current) >= batch_size or size + record_bytes > LAMBDA_PAYLOAD_BYTES):
            batches.append(current)
            current, size = [], len(b'{"Records":[]}')
        current.append(record)
        size += record_bytes
    if current:
        batches.append(current)
    return batches


def measure_archive(deliveries: list[SampleDelivery], time_limit: float = 240.0) -> dict[str, Any]:
    """Archive objects per 1,000 deliveries at the template's default batching: the deliveries stored
    by the webhook handler (in-process, on moto), then the archiver run over the table's stream as its
    mapping would run it (archive_stream)."""
    from tools.local_aws.moto_server import DEFAULT_TOKEN
    from tools.local_aws.stack import LocalStack

    with LocalStack(with_fault_proxy=False, token=DEFAULT_TOKEN) as stack, function_output():
        started = time.monotonic()
        stored = 0
        for delivery in deliveries:
            if time.monotonic() - started > time_limit:
                break
            answer = stack.invoke(*_event_for(stack, delivery))
            if answer.get("statusCode") != 200:
                raise RuntimeError(f"{delivery.kind}: answered {answer.get('statusCode')}: {answer.get('body')}")
            stored += answer["headers"].get("x-ingest-outcome") == "stored"
        return archive_stream(stack, stored)


def archive_stream(stack: Any, deliveries: int) -> dict[str, Any]:
    """Run the archiver over everything on the stack's table stream as its event source mapping would:
    the mapping's FilterCriteria applied, the records cut into its batches (stream_batches: BatchSize
    from the template, Lambda's 6 MB payload), each batch handed to the archiver function. Every batch is
    as full as those limits allow (traffic enough to fill one within the batching window: README).

    Objects per 1,000 deliveries are counted over the full batches (all but the last, which holds what
    was left when the deliveries stopped; all of them when there is only one), and given for the whole
    run beside them. Also the archiver's time per invocation (its billed duration) and record sizes."""
    from tools.local_aws.stream_poller import lambda_record, matches

    mapping = stack.stream_poller("ArchiverFunction")
    batch_size = int(template_default("ArchiverBatchSize"))
    streams = stack.boto3_client("dynamodbstreams")
    shards = streams.describe_stream(StreamArn=mapping.stream_arn)["StreamDescription"]["Shards"]
    records: list[dict[str, Any]] = []
    read = 0
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=mapping.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            found = page.get("Records") or []
            read += len(found)
            records += [
                r
                for r in (lambda_record(x, mapping.stream_arn) for x in found)
                if not mapping.filters or any(matches(p, r) for p in mapping.filters)
            ]
            iterator = page.get("NextShardIterator") if found else None
    batches = stream_batches(records, batch_size)
    invocation_s: list[float] = []
    objects: list[int] = []
    for batch in batches:
        t0 = time.perf_counter()
        result = stack.invoke("ArchiverFunction", {"Records": batch})
        invocation_s.append(time.perf_counter() - t0)
        objects.append(int(result["objects"]))
    s3 = stack.boto3_client("s3")
    bucket = stack.resources["ArchiveBucket"]["Ref"]
    keys = [
        obj
        for prefix in ("raw/", "quarantine/")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents") or []
    ]
    from airudder_ingest.storage.archive import iter_jsonl_gz

    lines = sum(1 for obj in keys for _ in iter_jsonl_gz(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
    memory_mb = int(stack.functions.spec("ArchiverFunction").memory_mb)
    record_bytes = [len(json.dumps(r, separators=(",", ":")).encode()) for r in records]
    full = batches[:-1] or batches
    full_objects = objects[: len(full)]
    per_1000 = 1000 * sum(full_objects) / max(1, sum(len(b) for b in full))
    return {
        "deliveries": deliveries,
        "stream_records": read,
        "records_after_filter": len(records),
        "record_bytes_median": int(median(record_bytes)),
        "batch_size": batch_size,
        "batching_window_s": template_default("ArchiverBatchWindowSeconds"),
        "records_per_invocation_limit": min(batch_size, LAMBDA_PAYLOAD_BYTES // max(1, int(median(record_bytes)))),
        "invocations": len(batches),
        "records_per_invocation": [len(b) for b in batches],
        "records_per_full_invocation": round(sum(len(b) for b in full) / len(full), 1) if full else 0,
        "objects_per_invocation": objects,
        "objects": sum(objects),
        "objects_listed": len(keys),
        "lines": lines,
        "objects_per_1000_deliveries": round(per_1000, 2),
        "counted_over": "full batches" if len(batches) > 1 else "one batch, not full (too few deliveries)",
        "objects_per_1000_deliveries_whole_run": round(1000 * sum(objects) / max(1, deliveries), 2),
        "target_objects_per_1000": 5,
        "met": per_1000 <= 5,
        "archiver_median_ms": ms(median(invocation_s)),
        "archiver_memory_mb": memory_mb,
        "object_bytes_median": int(median([int(o["Size"]) for o in keys])) if keys else 0,
    }


def model_write_units() -> dict[str, Any]:
    """Write units per delivery, from the items the real builders make for every sample of events/ (as
    they are, and grown to PADDED_BODY_BYTES) and DynamoDB's metering and index rules, with the table's
    indexes as template.yaml declares them; for both cost.SCENARIOS."""
    from bench.cost import SCENARIOS, mix_write_units
    from tools.local_aws.gateway import build_event

    table_keys, indexes = template_table()
    samples = sample_events()
    # The deliveries the previous layout's cost was measured on (the same simulator, seed and size).
    simulated = [
        build_event(
            "POST",
            d.path,
            {"token": "bench"},
            {"content-type": "application/json", "user-agent": "Airudder"},
            d.body,
            f"POST {d.path}",
        )
        for d in simulated_deliveries(calls=120, seed=11, workflows=4)
    ]
    mixes = {
        "samples": [delivery_items(name, event) for name, event in samples],
        "simulator": [delivery_items(f"simulated-{n}", event) for n, event in enumerate(simulated)],
        f"{PADDED_BODY_BYTES}_byte_bodies": [
            delivery_items(name, padded)
            for name, event in samples
            if (padded := padded_event(event, PADDED_BODY_BYTES)) is not None
        ],
    }
    result: dict[str, Any] = {
        "indexes": [{"name": i.name, "keys": list(i.keys), "projection": i.projection} for i in indexes],
    }
    for mix, found in mixes.items():
        result[mix] = {
            "deliveries": len(found),
            "body_bytes_median": int(median([d.body_bytes for d in found])),
            "envelope_bytes_median": int(median([d.envelope_bytes for d in found])),
            "event_item_bytes_median": int(median([item_size(d.event) for d in found])),
            "event_items_over_1kb": sum(item_size(d.event) > 1024 for d in found),
            "state_item_bytes_median": int(median([item_size(d.state) for d in found if d.state])),
            "stateless": sum(d.state is None for d in found),
            "recording_share": round(sum(d.recording for d in found) / len(found), 3),
            **{scenario: mix_write_units(found, scenario, table_keys, indexes) for scenario in SCENARIOS},
        }
    return result
