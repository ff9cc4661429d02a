"""The AWS bill per million deliveries, from what one delivery was measured to cost in calls and items.

Prices: us-east-1, on-demand, without free tiers, as published on the AWS pricing pages (API Gateway,
Lambda, DynamoDB, S3, SQS, CloudWatch) and as known to us on PRICES_AS_OF; the benchmark does not fetch
them. Check them before quoting the figure.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bench.common import IndexSpec, index_write_units, item_size, write_units

PRICES_AS_OF = "2025-01-15"
PRICES: dict[str, dict[str, Any]] = {
    "apigw_http_request": {"usd": 1.00 / 1e6, "unit": "HTTP API request (first 300 M/month; 512 KB each)"},
    "lambda_request": {"usd": 0.20 / 1e6, "unit": "Lambda request"},
    "lambda_arm64_gb_s": {"usd": 0.0000133334, "unit": "Lambda GB-second, arm64 (first 7.5 G GB-s/month)"},
    "dynamodb_wru": {"usd": 0.625 / 1e6, "unit": "DynamoDB on-demand write request unit (price of 2024-11-01)"},
    "s3_put": {"usd": 0.005 / 1000, "unit": "S3 Standard PUT/COPY/POST/LIST request"},
    "sqs_request": {"usd": 0.40 / 1e6, "unit": "SQS standard request (64 KB each)"},
    "secretsmanager_call": {"usd": 0.05 / 10_000, "unit": "Secrets Manager API call"},
    "logs_ingest_gb": {"usd": 0.50, "unit": "CloudWatch Logs ingestion, standard class, per GB"},
    "eventbridge_custom_event": {"usd": 1.00 / 1e6, "unit": "EventBridge custom event published (per 64 KB chunk)"},
}
# Fan-out entry sizes measured over every sample of events/ (airudder_ingest.streams.fanout.entry_size, phones
# masked): 647 / 768 / 928 bytes min / median / max, so one 64 KB chunk each.
FANOUT_ENTRY_BYTES_MAX = 928
MILLION = 1_000_000


SCENARIOS = {
    "known_entity": "a new event of an entity the table knows (its state is updated; index keys unchanged)",
    "new_entity": "every delivery creates its entity (the state item is new and enters its indexes)",
}


def delivery_write_units(
    event: Mapping[str, Any],
    state_before: Mapping[str, Any] | None,
    state_after: Mapping[str, Any] | None,
    table_keys: Sequence[str],
    indexes: Iterable[IndexSpec],
) -> Counter[str]:
    """DynamoDB write units of one delivery, by write: the conditional PutItem of the event item (a new
    item: its size), the UpdateItem of the entity's state (metered on the larger of the item before and
    after), and the index writes of each (bench.common.index_write_units)."""
    units: Counter[str] = Counter()
    units["event item"] += write_units(item_size(event))
    specs = list(indexes)
    for index in specs:
        for unit in index_write_units(None, event, table_keys, index):
            units[f"event in {index.name}"] += unit
    if state_after is not None:
        size = max(item_size(state_after), item_size(state_before) if state_before is not None else 0)
        units["state item"] += write_units(size)
        for index in specs:
            for unit in index_write_units(state_before, state_after, table_keys, index):
                units[f"state in {index.name}"] += unit
    return units


def mix_write_units(
    deliveries: Sequence[Any], scenario: str, table_keys: Sequence[str], indexes: Sequence[IndexSpec]
) -> dict[str, Any]:
    """Mean write units per delivery over `deliveries` (ingest_bench.DeliveryItems), each weighted
    equally, in one of SCENARIOS."""
    total: Counter[str] = Counter()
    for d in deliveries:
        before = d.state_before if scenario == "known_entity" else None
        total.update(delivery_write_units(d.event, before, d.state, table_keys, indexes))
    n = len(deliveries)
    return {
        "wru_per_delivery": round(sum(total.values()) / n, 3),
        "by_write": {k: round(v / n, 3) for k, v in sorted(total.items())},
    }


def delivery_bill(
    *,
    wru: float,
    sqs_sends: float,
    claim_puts: float,
    webhook_billed_ms: float,
    webhook_memory_mb: int,
    archive_objects: float,
    archiver_invocations: float,
    archiver_billed_ms: float,
    archiver_memory_mb: int,
) -> dict[str, Any]:
    """Dollars per million deliveries, by line, from per-delivery quantities: write units, SQS messages,
    claim-check PUTs, the webhook function's billed duration, and the archiver's share (archive objects
    and invocations per delivery, its billed duration per invocation). DynamoDB Streams reads by Lambda
    are free."""
    gb_s = PRICES["lambda_arm64_gb_s"]["usd"]
    lines = {
        "api_gateway": MILLION * PRICES["apigw_http_request"]["usd"],
        "lambda_requests": MILLION * PRICES["lambda_request"]["usd"],
        "lambda_duration": MILLION * webhook_billed_ms / 1000 * webhook_memory_mb / 1024 * gb_s,
        "dynamodb_writes": MILLION * wru * PRICES["dynamodb_wru"]["usd"],
        "sqs": MILLION * sqs_sends * PRICES["sqs_request"]["usd"],
        "s3_put_claim_checks": MILLION * claim_puts * PRICES["s3_put"]["usd"],
        "archiver_requests": MILLION * archiver_invocations * PRICES["lambda_request"]["usd"],
        "archiver_duration": MILLION
        * archiver_invocations
        * archiver_billed_ms
        / 1000
        * archiver_memory_mb
        / 1024
        * gb_s,
        "archive_s3_put": MILLION * archive_objects * PRICES["s3_put"]["usd"],
    }
    total = round(sum(lines.values()), 2)
    return {"usd_per_million_deliveries": total, "lines": {k: round(v, 4) for k, v in lines.items()}}


TARGETS_USD = {"known_entity": 3.50, "new_entity": 6.00}  # issue 12, at the bench's body mix


def ingest_bill(
    model: Mapping[str, Any], calls: Mapping[str, Any], archive: Mapping[str, Any], overhead: Mapping[str, Any]
) -> dict[str, Any]:
    """Dollars per million deliveries for each body mix of `model` (ingest_bench.model_write_units) and
    each of SCENARIOS: the write units modelled from the measured items, the calls counted on the wire
    (measure_calls_and_items), the archiver's objects and invocations per delivery as measured over the
    stream (measure_archive), the webhook function's duration from the overhead figure."""
    per = calls["calls_per_delivery"]
    webhook_ms = math.ceil(float(overhead["handler_median_ms"]))
    archiver_ms = math.ceil(float(archive["archiver_median_ms"]))
    # At full batches (the stream's steady state): objects and invocations per delivery.
    objects = float(archive["objects_per_1000_deliveries"]) / 1000
    invocations = 1 / float(archive["records_per_full_invocation"])
    mixes: dict[str, Any] = {}
    for mix, found in model.items():
        if not isinstance(found, Mapping) or "known_entity" not in found:
            continue
        # The sample mix's SQS messages are counted on the wire; another mix's are its share of links.
        sqs = float(per.get("sqs:SendMessage", 0.0)) if mix == "samples" else float(found["recording_share"])
        mixes[mix] = {}
        for scenario in SCENARIOS:
            wru = float(found[scenario]["wru_per_delivery"])
            bill = delivery_bill(
                wru=wru,
                sqs_sends=sqs,
                claim_puts=float(per.get("s3:PutObject", 0.0)),
                webhook_billed_ms=webhook_ms,
                webhook_memory_mb=int(calls["function_memory_mb"]),
                archive_objects=objects,
                archiver_invocations=invocations,
                archiver_billed_ms=archiver_ms,
                archiver_memory_mb=int(archive["archiver_memory_mb"]),
            )
            entry: dict[str, Any] = {**bill, "wru_per_delivery": wru, "wru_by_write": found[scenario]["by_write"]}
            if mix == "samples":
                entry["target_usd"] = TARGETS_USD[scenario]
                entry["met"] = bill["usd_per_million_deliveries"] <= TARGETS_USD[scenario]
            mixes[mix][scenario] = entry
    return {
        "by_mix": mixes,
        "inputs": {
            "webhook_memory_mb": calls["function_memory_mb"],
            "webhook_billed_ms": webhook_ms,
            "webhook_duration_source": "median handler time of the overhead figure (moto on this machine)",
            "sqs_send_per_delivery_on_the_wire": float(per.get("sqs:SendMessage", 0.0)),
            "claim_check_puts_per_delivery": float(per.get("s3:PutObject", 0.0)),
            "archive_objects_per_delivery": round(objects, 5),
            "archiver_invocations_per_delivery": round(invocations, 5),
            "archiver_billed_ms": archiver_ms,
            "archiver_memory_mb": archive["archiver_memory_mb"],
            "log_bytes_per_delivery": overhead.get("log_bytes_per_delivery"),
        },
        "not_in_total": {
            # The function's own log lines and metrics (EMF), as measured; Lambda's START/END/REPORT lines
            # come on top.
            "cloudwatch_logs_function_output": round(
                MILLION * float(overhead.get("log_bytes_per_delivery") or 0) / 1e9 * PRICES["logs_ingest_gb"]["usd"], 4
            ),
            # One GetSecretValue per container per cache period (300 s): 12 an hour per warm container.
            "secrets_manager_per_warm_container_hour": round(12 * PRICES["secretsmanager_call"]["usd"], 6),
        },
        "prices": PRICES,
        "prices_as_of": PRICES_AS_OF,
        "prices_region": "us-east-1",
        "prices_source": "AWS public pricing pages as known on that date (not fetched by the benchmark)",
    }


def fanout_bill_per_million(
    *,
    events_per_invocation: float,
    invocation_ms: float,
    memory_mb: int = 256,
    entry_bytes: int = FANOUT_ENTRY_BYTES_MAX,
) -> dict[str, Any]:
    """Dollars per million events published (README, "Fan-out"): EventBridge's charge per 64 KB chunk
    of each entry, plus the publisher's invocations (one per stream batch; state and quarantine writes
    are filtered out by the mapping and cost nothing) and their GB-seconds. DynamoDB Streams reads by
    Lambda are free."""
    chunks = math.ceil(entry_bytes / (64 * 1024))
    invocations = MILLION / events_per_invocation
    lines = {
        "eventbridge_events": MILLION * chunks * PRICES["eventbridge_custom_event"]["usd"],
        "lambda_requests": invocations * PRICES["lambda_request"]["usd"],
        "lambda_duration": invocations
        * math.ceil(invocation_ms)
        / 1000
        * memory_mb
        / 1024
        * PRICES["lambda_arm64_gb_s"]["usd"],
    }
    return {
        "usd_per_million_events": round(sum(lines.values()), 3),
        "lines": {k: round(v, 4) for k, v in lines.items()},
    }
