"""Cold-start figure of `make bench`: a fresh process importing, initialising and handling its first
event, each webhook function against a minimal boto3 handler doing the same I/O (bench/coldstart_probe.py).

The layer is laid out as Lambda gets it (bench/layer_copy.py): as `make build` ships it (bytecode
compiled at build time), and, for one function, as `sam build` alone leaves it (sources only, compiled
at every cold start), to show what the build step saves. Runs are interleaved handler / baseline.
Wall time is the figure; the processes' CPU time is reported too (less sensitive to other load).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, median, ms, quantile
from bench.layer_copy import build_layer

PROBE = REPO_ROOT / "bench" / "coldstart_probe.py"
EVENTS = REPO_ROOT / "events" / "apigw"
REFERENCE_FUNCTION = "WorkflowDialerFunction"
TARGET = 1.35  # issue 13 (1.4 before)


def _probe(args: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        completed = subprocess.run(  # noqa: S603 - this interpreter and our own probe
            [sys.executable, str(PROBE), *args, "--result-file", str(out)],
            cwd=REPO_ROOT,
            # Lambda cannot write bytecode next to the layer (/opt is read-only): neither may the probe.
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"cold-start probe {args[0]} failed: {completed.stderr.decode()[-2000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _samples(stack: Any) -> dict[str, Path]:
    """One API Gateway sample event per webhook function (the first in file order)."""
    found: dict[str, Path] = {}
    webhook_functions = {route.function_id for route in stack.route_objects}
    for file in sorted(EVENTS.rglob("*.json")):
        event = json.loads(file.read_text())
        route_key = event.get("routeKey") or ""
        function_id = next((r.function_id for r in stack.route_objects if r.route_key == route_key), None)
        if function_id is not None and function_id in webhook_functions and function_id not in found:
            found[function_id] = file
    return found


class _Cleaner:
    """Deletes what one handled event wrote, so that every cold start stores a new event."""

    def __init__(self, stack: Any, calls: list[dict[str, Any]]) -> None:
        self.ddb = stack.boto3_client("dynamodb")
        self.keys = []
        for call in calls:
            params = call["params"]
            if call["operation"] == "PutItem":
                item = params["Item"]
                self.keys.append((params["TableName"], {"pk": item["pk"], "sk": item["sk"]}))
            elif call["operation"] == "UpdateItem":
                self.keys.append((params["TableName"], params["Key"]))

    def __call__(self) -> None:
        for table, key in self.keys:
            self.ddb.delete_item(TableName=table, Key=key)


def measure_cold_start(repeats: int = 3, reference_repeats: int = 3, time_limit: float = 420.0) -> dict[str, Any]:
    from tools.local_aws.moto_server import DEFAULT_TOKEN
    from tools.local_aws.stack import LocalStack

    started = time.monotonic()
    per_function: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        shipped = build_layer(Path(folder) / "make-build", compiled=True)
        sam_only = build_layer(Path(folder) / "sam-build", compiled=False)
        with LocalStack(with_fault_proxy=False, token=DEFAULT_TOKEN) as stack:
            samples = _samples(stack)
            missing = sorted({r.function_id for r in stack.route_objects} - set(samples))
            reference: dict[str, list[dict[str, Any]]] = {"sam_build_only": [], "make_build": [], "baseline": []}
            pooled: dict[str, list[float]] = {"handler": [], "baseline": [], "handler_cpu": [], "baseline_cpu": []}
            for function_id, sample in sorted(samples.items()):
                if time.monotonic() - started > time_limit:
                    per_function[function_id] = {"skipped": "time limit"}
                    continue
                calls_file = Path(folder) / f"{function_id}.calls.json"
                # A first run records the AWS calls for the baseline to replay (and warms the disk cache).
                first = _probe(
                    ["handler", "--event", str(sample), "--layer", str(shipped), "--capture", str(calls_file)]
                )
                calls = json.loads(calls_file.read_text())
                clean = _Cleaner(stack, calls)
                clean()
                handler: list[dict[str, Any]] = []
                baseline: list[dict[str, Any]] = []
                runs = max(repeats, reference_repeats) if function_id == REFERENCE_FUNCTION else repeats
                for _ in range(runs):
                    handler.append(_probe(["handler", "--event", str(sample), "--layer", str(shipped)]))
                    clean()
                    baseline.append(_probe(["baseline", "--calls", str(calls_file)]))
                    clean()
                    if function_id == REFERENCE_FUNCTION:
                        reference["sam_build_only"].append(
                            _probe(["handler", "--event", str(sample), "--layer", str(sam_only)])
                        )
                        clean()
                pooled["handler"] += [r["seconds"] for r in handler]
                pooled["baseline"] += [r["seconds"] for r in baseline]
                pooled["handler_cpu"] += [r["cpu_seconds"] for r in handler]
                pooled["baseline_cpu"] += [r["cpu_seconds"] for r in baseline]
                for result in handler:
                    if result["status"] != first["status"]:
                        raise RuntimeError(f"{function_id}: answered {result['status']}, first run {first['status']}")
                if function_id == REFERENCE_FUNCTION:
                    reference["make_build"], reference["baseline"] = handler, baseline
                h, b = median([r["seconds"] for r in handler]), median([r["seconds"] for r in baseline])
                hc, bc = median([r["cpu_seconds"] for r in handler]), median([r["cpu_seconds"] for r in baseline])
                per_function[function_id] = {
                    "ratio": round(h / b, 3),
                    "cpu_ratio": round(hc / bc, 3),
                    "handler_ms": ms(h),
                    "baseline_ms": ms(b),
                    "handler_init_ms": ms(median([r["init_seconds"] for r in handler])),
                    "baseline_init_ms": ms(median([r["init_seconds"] for r in baseline])),
                    "status": first["status"],
                    "aws_calls": [f"{c['service']}:{c['operation']}" for c in calls],
                    "sample": sample.relative_to(REPO_ROOT).as_posix(),
                    "runs": len(handler),
                }
    measured = {k: v for k, v in per_function.items() if "ratio" in v}
    if not measured:
        raise RuntimeError("no function was measured")
    # Every function runs the same handler file; only the route's model differs. The figure pools every
    # run of every function (a few runs per function are noisy on a shared machine); each function's
    # own ratio is in per_function.
    ratio = median(pooled["handler"]) / median(pooled["baseline"])
    cpu_ratio = median(pooled["handler_cpu"]) / median(pooled["baseline_cpu"])
    per_ratios = [v["ratio"] for v in measured.values()]
    worst = max(measured, key=lambda k: measured[k]["ratio"])
    summary: dict[str, Any] = {
        "ratio": round(ratio, 3),
        "cpu_ratio": round(cpu_ratio, 3),
        "handler_ms": ms(median(pooled["handler"])),
        "baseline_ms": ms(median(pooled["baseline"])),
        "runs_per_side": len(pooled["handler"]),
        "per_function_ratio_p25_p75": [round(quantile(per_ratios, 0.25), 3), round(quantile(per_ratios, 0.75), 3)],
        "max_ratio": measured[worst]["ratio"],
        "max_function": worst,
        "target": TARGET,
        "met": ratio <= TARGET,
        "functions": len(measured),
        "functions_without_sample": missing,
        "per_function": per_function,
    }
    if reference["sam_build_only"]:
        raw = median([r["seconds"] for r in reference["sam_build_only"]])
        base = median([r["seconds"] for r in reference["baseline"]])
        shipped_s = median([r["seconds"] for r in reference["make_build"]])
        summary["layer_without_bytecode"] = {
            "function": REFERENCE_FUNCTION,
            "ratio": round(raw / base, 3),
            "handler_ms": ms(raw),
            "with_bytecode_ratio": round(shipped_s / base, 3),
            "cpu_ratio": round(
                median([r["cpu_seconds"] for r in reference["sam_build_only"]])
                / median([r["cpu_seconds"] for r in reference["baseline"]]),
                3,
            ),
        }
    return summary
