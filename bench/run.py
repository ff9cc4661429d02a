"""`make bench`: every benchmark figure of the project, each a ratio measured side by side in one run.

    .venv/bin/python -m bench.run [--json bench/results.json] [--quick] [--only overhead coldstart ...]

Prints one line per figure and writes the same figures (with their details) to the JSON file.
Sections: overhead, coldstart, throughput, archive, cost (bench/ingest_bench.py, bench/coldstart.py,
bench/cost.py), and the hooks below. Everything runs on this machine against the embedded moto server;
all traffic stays on the loopback interface, and every loop is bounded in count and time.

Hooks: another benchmark script is run when it exists, as
    python bench/<name>.py --json <file>
its output is shown as it runs, and its JSON is put under its name in the results. A missing script is
reported as "not present"; a failing one fails `make bench` (after every other figure is written).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, say

HOOKS = {"recordings": "bench/recordings_bench.py", "sync": "bench/sync_bench.py"}
SECTIONS = ("overhead", "coldstart", "throughput", "archive", "cost", *HOOKS)
HOOK_TIME_LIMIT = 300


def _quiet_logs() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    for name in ("werkzeug", "tools", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _hook(name: str, script: str) -> dict[str, Any]:
    path = REPO_ROOT / script
    if not path.is_file():
        return {"status": "not present", "script": script}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"{name}.json"
        started = time.monotonic()
        try:
            completed = subprocess.run(  # noqa: S603 - this interpreter and the project's own script
                [sys.executable, str(path), "--json", str(out)],
                cwd=REPO_ROOT,
                env={
                    **os.environ,
                    "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "layers" / "ingest")]),
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=HOOK_TIME_LIMIT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"status": f"failed (no answer in {HOOK_TIME_LIMIT} s)", "script": script}
        output = completed.stdout.decode(errors="replace")
        for line in output.splitlines():
            say(f"  {name}| {line}")
        result: dict[str, Any] = {
            "status": "ok" if completed.returncode == 0 else f"failed (exit {completed.returncode})",
            "script": script,
            "seconds": round(time.monotonic() - started, 1),
        }
        if out.is_file():
            result["results"] = json.loads(out.read_text())
        if completed.returncode != 0:
            result["output_tail"] = output[-2000:]
        return result


def _line_overhead(r: dict[str, Any]) -> str:
    return (
        f"ingest overhead: {r['ratio']:.2f}  (handler in-process {r['handler_median_ms']:.1f} ms / bare I/O"
        f" {r['bare_io_median_ms']:.1f} ms, medians of {r['pairs']} ABAB pairs; target <= {r['target']}:"
        f" {'met' if r['met'] else 'NOT met'})"
    )


def _line_coldstart(r: dict[str, Any]) -> list[str]:
    low, high = r["per_function_ratio_p25_p75"]
    lines = [
        f"cold start: {r['ratio']:.2f}  (every webhook function, {r['functions']}, layer as `make build` ships it;"
        f" handler {r['handler_ms']:.0f} ms / boto3-only handler {r['baseline_ms']:.0f} ms, medians of"
        f" {r['runs_per_side']} interleaved runs each; per function {low:.2f}-{high:.2f} (p25-p75); CPU-time"
        f" ratio {r['cpu_ratio']:.2f}; target <= {r['target']}: {'met' if r['met'] else 'NOT met'})"
    ]
    raw = r.get("layer_without_bytecode")
    if raw:
        lines.append(
            f"cold start, layer as `sam build` alone leaves it (no bytecode): {raw['ratio']:.2f}  ({raw['function']},"
            f" handler {raw['handler_ms']:.0f} ms; {raw['with_bytecode_ratio']:.2f} with the bytecode `make build`"
            f" adds, same runs)"
        )
    return lines


def _line_throughput(r: dict[str, Any]) -> list[str]:
    return [
        f"throughput, {n} concurrent sender{'s' if n != '1' else ''}: {v['ratio']:.2f}  (local gateway"
        f" {v['deliveries_per_s']:.1f} deliveries/s / moto PutItem {v['putitem_per_s']:.1f}/s, same concurrency;"
        f" {v['ratio_to_bare_io']:.2f} of the bare I/O of a delivery replayed with boto3,"
        f" {v['bare_io_deliveries_per_s']:.1f}/s; {v['delivery_errors']} errors)"
        for n, v in r["by_concurrency"].items()
    ]


def _line_archive(r: dict[str, Any]) -> str:
    return (
        f"archive: {r['objects_per_1000_deliveries']:.2f} objects per 1,000 deliveries over {r['counted_over']}"
        f"  ({r['mix']}: {r['deliveries']} deliveries, {r['lines']} lines in {r['objects']} objects;"
        f" {r['invocations']} invocations of {'/'.join(str(n) for n in r['records_per_invocation'])} records"
        f" (BatchSize {r['batch_size']}, window {r['batching_window_s']} s, Lambda's 6 MB at"
        f" {r['record_bytes_median']} bytes a record: {r['records_per_invocation_limit']} at most),"
        f" {'/'.join(str(n) for n in r['objects_per_invocation'])} objects each; archiver median"
        f" {r['archiver_median_ms']:.0f} ms; target <= {r['target_objects_per_1000']}:"
        f" {'met' if r['met'] else 'NOT met'})"
    )


def _line_cost(r: dict[str, Any]) -> list[str]:
    bill = r["bill"]
    inputs = bill["inputs"]
    out = []
    names = {"known_entity": "a known entity", "new_entity": "a new entity each time"}
    for mix, scenarios in bill["by_mix"].items():
        count = r["model"][mix]["deliveries"]
        label = {
            "samples": f"the {count} samples of events/",
            "simulator": f"the simulator's {count} call completions and dialer ContactStatus (the previous bench's)",
        }.get(mix, f"{count} samples grown to {mix.replace('_', ' ')}")
        for scenario, b in scenarios.items():
            lines = b["lines"]
            writes = " + ".join(f"{k} {v:.2f}" for k, v in b["wru_by_write"].items())
            target = f"; target <= {b['target_usd']:.2f}: {'met' if b['met'] else 'NOT met'}" if "met" in b else ""
            out.append(
                f"cost, {names[scenario]}, {label}: ${b['usd_per_million_deliveries']:.2f} per million deliveries"
                f"  ({b['wru_per_delivery']:.2f} WRU per delivery = {writes}; API Gateway {lines['api_gateway']:.2f}"
                f" + Lambda {lines['lambda_requests'] + lines['lambda_duration']:.2f}"
                f" ({inputs['webhook_memory_mb']} MB, {inputs['webhook_billed_ms']} ms)"
                f" + DynamoDB {lines['dynamodb_writes']:.2f} + SQS {lines['sqs']:.2f}"
                f" + archiver {lines['archiver_requests'] + lines['archiver_duration']:.3f}"
                f" + archive PUTs {lines['archive_s3_put']:.3f}"
                f" + claim checks {lines['s3_put_claim_checks']:.2f}{target})"
            )
    sample_archive = r["calls"]["archive"]
    out.append(
        f"archive, the samples of events/ each as often: {r['calls']['archive_objects_per_1000_at_full_batches']:.2f}"
        f" objects per 1,000 deliveries at full batches ({sample_archive['objects']} objects for one batch of all"
        f" {sample_archive['records_after_filter']} deliveries: one per webhook type and day;"
        f" {sample_archive['records_per_invocation_limit']} records per full batch; modelled from that batch;"
        f" target <= 5: {'met' if r['calls']['archive_objects_per_1000_at_full_batches'] <= 5 else 'NOT met'})"
    )
    out.append(
        f"cost inputs: prices us-east-1 as of {bill['prices_as_of']} (HTTP API $1.00/M, Lambda arm64 $0.0000133334/GB-s"
        f" + $0.20/M, DynamoDB $0.625/M WRU, S3 PUT $0.005/1000, SQS $0.40/M); calls per delivery on the wire"
        f" {r['calls']['calls_per_delivery']}; items as stored (median bytes) {r['calls']['item_bytes_median_stored']}"
        f" vs built {r['calls']['item_bytes_median_built']}"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", default=str(REPO_ROOT / "bench" / "results.json"))
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, not for quoting)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    args = parser.parse_args(argv)
    for folder in (REPO_ROOT, REPO_ROOT / "layers" / "ingest"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    _quiet_logs()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    wanted = set(args.only or SECTIONS)
    quick = args.quick

    from bench.coldstart import measure_cold_start
    from bench.common import simulated_deliveries
    from bench.cost import ingest_bill
    from bench.ingest_bench import (
        measure_archive,
        measure_calls_and_items,
        measure_overhead,
        measure_throughput,
        model_write_units,
    )

    started = time.monotonic()
    figures: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    failed: list[str] = []

    def section(name: str, run: Callable[[], Any], lines: Callable[[Any], str | list[str]]) -> None:
        if name not in wanted:
            return
        t0 = time.monotonic()
        try:
            result = run()
        except Exception as error:
            failed.append(name)
            figures[name] = {"status": f"failed: {type(error).__name__}: {error}"}
            say(f"{name}: FAILED ({type(error).__name__}: {error})")
            traceback.print_exc()
        else:
            figures[name] = result
            out = lines(result)
            for line in [out] if isinstance(out, str) else out:
                say(line)
        seconds[name] = round(time.monotonic() - t0, 1)

    say(f"make bench: {os.cpu_count()} cores, Python {platform.python_version()}, moto server on 127.0.0.1")
    section(
        "overhead",
        lambda: measure_overhead(pairs=60 if quick else 300, warmup=10 if quick else 30),
        _line_overhead,
    )
    section("coldstart", lambda: measure_cold_start(repeats=1 if quick else 2), _line_coldstart)
    section(
        "throughput",
        lambda: measure_throughput(per_round=30 if quick else 100, rounds=1 if quick else 2),
        _line_throughput,
    )

    def archive() -> dict[str, Any]:
        # The AIRUDDER simulator's traffic (call completions and dialer ContactStatus), enough to fill batches.
        count = 1_200 if quick else 3_000
        result = measure_archive(simulated_deliveries(calls=count * 2 // 3, seed=13), time_limit=120 if quick else 300)
        return {**result, "mix": "the AIRUDDER simulator's call completions and dialer ContactStatus"}

    section("archive", archive, _line_archive)

    def cost() -> dict[str, Any]:
        overhead = figures.get("overhead")
        if not overhead or "ratio" not in overhead:  # the Lambda duration comes from the overhead figure
            overhead = measure_overhead(pairs=30, warmup=5)
        stream = figures.get("archive")
        if not stream or "objects" not in stream:
            stream = {**measure_archive(simulated_deliveries(calls=800, seed=13)), "mix": "simulated"}
        model = model_write_units()
        calls = measure_calls_and_items(repeats=1 if quick else 2)
        return {"model": model, "calls": calls, "bill": ingest_bill(model, calls, stream, overhead)}

    section("cost", cost, _line_cost)
    for name, script in HOOKS.items():
        if name not in wanted:
            continue
        t0 = time.monotonic()
        if (REPO_ROOT / script).is_file():
            say(f"{name}: running {script} ...")
        result = _hook(name, script)
        figures[name] = result
        seconds[name] = round(time.monotonic() - t0, 1)
        if result["status"] == "not present":
            say(f"{name}: not measured: {script} is not present yet (hook: python {script} --json FILE)")
        elif result["status"] != "ok":
            failed.append(name)
            say(f"{name}: FAILED: {script} {result['status']}")
        else:
            say(f"{name}: {script} ok ({result['seconds']} s); figures above and in the JSON under '{name}'")

    total = round(time.monotonic() - started, 1)
    document = {
        "command": "make bench" if not args.only and not quick else " ".join(["python -m bench.run", *(argv or [])]),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "quick": quick,
        "seconds": {**seconds, "total": total},
        "failed": failed,
        "figures": figures,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(document, indent=2, default=str) + "\n")
    say(f"results: {args.json}; {total:.0f} s in all")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
