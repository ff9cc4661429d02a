"""The AWS bill per million deliveries, from what one delivery was measured to cost in calls and items.

Prices: us-east-1, on-demand, without free tiers, as published on the AWS pricing pages (API Gateway,
Lambda, DynamoDB, S3, SQS, CloudWatch) and as known to us on PRICES_AS_OF; the benchmark does not fetch
them. Check them before quoting the figure.
"""

from __future__ import annotations

import math
from typing import Any

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
# Fan-out entry sizes measured over every sample of events/ (airudder_ingest.fanout.entry_size, phones
# masked): 647 / 768 / 928 bytes min / median / max, so one 64 KB chunk each.
FANOUT_ENTRY_BYTES_MAX = 928
MILLION = 1_000_000


def bill_per_million(calls: dict[str, Any], overhead: dict[str, Any] | None) -> dict[str, Any]:
    """Dollars per million deliveries, by line, from measure_calls_and_items() and measure_overhead()."""
    per = calls["calls_per_delivery"]
    memory_gb = calls["function_memory_mb"] / 1024
    duration_ms = float(overhead["handler_median_ms"]) if overhead else float("nan")
    billed_ms = math.ceil(duration_ms) if not math.isnan(duration_ms) else float("nan")
    wru = float(calls["wru_per_delivery_total"])
    s3_puts = float(per.get("s3:PutObject", 0.0))
    sqs = float(per.get("sqs:SendMessage", 0.0))
    lines = {
        "api_gateway": MILLION * PRICES["apigw_http_request"]["usd"],
        "lambda_requests": MILLION * PRICES["lambda_request"]["usd"],
        "lambda_duration": MILLION * billed_ms / 1000 * memory_gb * PRICES["lambda_arm64_gb_s"]["usd"],
        "dynamodb_writes": MILLION * wru * PRICES["dynamodb_wru"]["usd"],
        "s3_put": MILLION * s3_puts * PRICES["s3_put"]["usd"],
        "sqs": MILLION * sqs * PRICES["sqs_request"]["usd"],
    }
    total = sum(lines.values())
    log_bytes = float(overhead.get("log_bytes_per_delivery", 0)) if overhead else 0.0
    extra = {
        # The function's own log lines and metrics (EMF), as measured; Lambda's START/END/REPORT lines
        # come on top. Not in the total: the brief's bill is the request path.
        "cloudwatch_logs_function_output": MILLION * log_bytes / 1e9 * PRICES["logs_ingest_gb"]["usd"],
        # One GetSecretValue per container per cache period (300 s): 12 an hour per warm container.
        "secrets_manager_per_warm_container_hour": 12 * PRICES["secretsmanager_call"]["usd"],
    }
    return {
        "usd_per_million_deliveries": round(total, 2),
        "lines": {k: round(v, 3) for k, v in lines.items()},
        "not_in_total": {k: round(v, 5) for k, v in extra.items()},
        "inputs": {
            "lambda_memory_mb": calls["function_memory_mb"],
            "lambda_billed_ms": billed_ms,
            "lambda_duration_source": "median handler time of the overhead figure (moto on this machine)",
            "dynamodb_wru_per_delivery": wru,
            "dynamodb_wru_breakdown": calls["wru_per_delivery"],
            "s3_put_per_delivery": s3_puts,
            "sqs_send_per_delivery": sqs,
            "log_bytes_per_delivery": log_bytes,
        },
        "measured": calls,
        "prices": {k: {**v, "usd": v["usd"]} for k, v in PRICES.items()},
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
