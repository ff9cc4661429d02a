"""Recording copies: peak memory and throughput of RecordingsFunction against plain boto3 uploads, side by
side in one run (absolute numbers on this machine say little about Lambda; the ratios do).

    .venv/bin/python bench/recordings_bench.py [--sizes-mib 10 200] [--repeat 5] [--json out.json]

Everything runs against the local stack (template.yaml on moto) and the local recordings server. Each
measurement is a fresh process (tests/support/recordings_probe.py) whose peak resident memory is /proc's VmHWM:
  copier                  RecordingsFunction's handler: HTTP stream -> SHA-256 -> S3 (PutObject / parts), and
                          its DynamoDB reads and writes; timed over its invocation (the queue's receive and
                          delete are the event source mapping's work, not the function's)
  upload_fileobj(http)    boto3 upload_fileobj(response.raw) of the same link, timed from opening it: no hash,
                          no checks
Both are timed warm: each process first copies (uploads) a 9 MiB recording, untimed, as a Lambda container
has handled a recording before most of its invocations. A fresh process's first calls (botocore loading
its operation models and resolving endpoints, the first connections) cost the copier ~35 ms and
upload_fileobj less; they are a cold start's, not throughput.
  upload_fileobj(local)   boto3 upload_fileobj of the same bytes generated in the process: no HTTP
upload_fileobj runs with boto3's defaults (8 MiB parts, 10 threads). Not part of `make test`.

Each size is measured `--repeat` times (5 by default, also in `make bench`; 9 under 32 MiB), the copier and
upload_fileobj(http) back to back, in turn first (a drift of the shared machine weighs on both alike),
after one untimed round of both; the figures are the medians, the throughput ratio the ratio of the
median times. A single pair moves by ±0.1 or more on two shared cores (a 10 MiB copy takes ~0.15 s),
so each pair's ratio is shown too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
# What each side copies, untimed, before the timed copy: just over one 8 MiB part, so that both make
# every first call, the multipart ones included.
WARM_UP_BYTES = 9 * MIB
# A copy under this size takes a fraction of a second, and one pair's ratio moves by ±0.2 on two shared
# cores: such sizes are measured more often (--repeat-small).
SMALL_MIB = 32


def _probe(args: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        completed = subprocess.run(  # noqa: S603 - this interpreter, our own module and arguments
            [sys.executable, "-m", "tests.support.recordings_probe", *args, "--result-file", str(out)],
            cwd=REPO,
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=600,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(completed.stderr.decode()[-3000:])
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _copy(lab: Any, seed: str, size: int) -> dict[str, Any]:
    """The copier: the link queued as the webhook edge queues it, the handler run in a fresh process that
    first copies an untimed warm-up recording (one invocation each: batch size 1)."""
    warm_up = f"{seed}-warm-up"
    lab.send(warm_up, lab.server.url(warm_up, size=WARM_UP_BYTES))
    lab.send(seed, lab.server.url(seed, size=size))
    report = _probe(["consume", "--queue-url", lab.queue_url, "--batch-size", "1", "--timed-call-id", seed])
    for call_id in (warm_up, seed):
        if lab.recording(call_id).get("recording_status") != "archived":
            raise RuntimeError(f"the copier did not archive {call_id}: {report}")
    if report["timed_invocations"] != [1]:
        raise RuntimeError(f"the timed copy was not the second invocation: {report}")
    return report


def _upload_http(lab: Any, seed: str, size: int) -> dict[str, Any]:
    """boto3 upload_fileobj of the same link, in a fresh process, after an untimed warm-up upload."""
    url = lab.server.url(seed, size=size)
    warm_up = lab.server.url(f"{seed}-warm-up-http", size=WARM_UP_BYTES)
    key = f"bench/http/{seed}.wav"
    return _probe(["upload-fileobj", "--url", url, "--warm-up-url", warm_up, "--bucket", lab.bucket, "--key", key])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[10, 200])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (the median is shown)")
    parser.add_argument("--repeat-small", type=int, default=9, help=f"the same for sizes under {SMALL_MIB} MiB")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    for folder in (REPO, REPO / "layers" / "ingest"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), str(REPO / "layers" / "ingest"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    from tests.support.recordings_testkit import RecordingsLab

    rows: list[dict[str, Any]] = []
    with RecordingsLab(parameters={"RecordingReadTimeoutSeconds": "30"}) as lab:
        for size_mib in args.sizes_mib:
            size = size_mib * MIB
            runs: dict[str, list[dict[str, Any]]] = {
                "copier": [],
                "upload_fileobj(http)": [],
                "upload_fileobj(local)": [],
            }
            # One untimed round first: the lab's first-time costs (moto's first writes to the table and
            # the bucket, its first object of this size) fell on the first measurement, by turns the
            # copier's and upload_fileobj's.
            warm_up = f"bench-{size_mib}-warm-up-{time.monotonic_ns()}"
            _copy(lab, warm_up, size)
            _upload_http(lab, warm_up, size)
            for run in range(args.repeat_small if size_mib < SMALL_MIB else args.repeat):
                seed = f"bench-{size_mib}-{run}-{time.monotonic_ns()}"
                # In turn first: copier then upload_fileobj(http), then the other way round.
                for name in ("copier", "upload_fileobj(http)")[:: 1 if run % 2 == 0 else -1]:
                    runs[name].append(_copy(lab, seed, size) if name == "copier" else _upload_http(lab, seed, size))
                runs["upload_fileobj(local)"].append(
                    _probe(
                        [
                            "upload-fileobj",
                            "--seed",
                            seed,
                            "--size",
                            str(size),
                            "--bucket",
                            lab.bucket,
                            "--key",
                            f"bench/local/{seed}.wav",
                        ]
                    )
                )
            for name, reports in runs.items():
                seconds = statistics.median(float(r["seconds"]) for r in reports)
                rows.append(
                    {
                        "size_mib": size_mib,
                        "method": name,
                        "peak_rss_mib": statistics.median(r["peak_rss_kb"] for r in reports) / 1024,
                        "ready_rss_mib": statistics.median(r["ready_rss_kb"] for r in reports) / 1024,
                        "seconds": seconds,
                        "runs_seconds": [round(float(r["seconds"]), 4) for r in reports],
                        "mib_per_s": size_mib / seconds if seconds else float("inf"),
                    }
                )

    print(f"{'size':>8}  {'method':<22} {'peak RSS':>10} {'RSS ready':>10} {'over ready':>10} {'time':>8} {'MiB/s':>8}")
    for row in rows:
        print(
            f"{row['size_mib']:>5} MiB  {row['method']:<22} {row['peak_rss_mib']:>6.1f} MiB"
            f" {row['ready_rss_mib']:>6.1f} MiB {row['peak_rss_mib'] - row['ready_rss_mib']:>6.1f} MiB"
            f" {row['seconds']:>6.2f} s {row['mib_per_s']:>8.1f}"
        )
    copier = {r["size_mib"]: r for r in rows if r["method"] == "copier"}
    if len(copier) >= 2:
        small, large = min(copier), max(copier)
        growth = copier[large]["peak_rss_mib"] - copier[small]["peak_rss_mib"]
        print(f"copier peak RSS, {large} MiB vs {small} MiB: {growth:+.1f} MiB")
    for size_mib in sorted(copier):
        plain = next(r for r in rows if r["size_mib"] == size_mib and r["method"] == "upload_fileobj(http)")
        ratio = copier[size_mib]["mib_per_s"] / plain["mib_per_s"]
        pairs = [p / c for c, p in zip(copier[size_mib]["runs_seconds"], plain["runs_seconds"], strict=True)]
        print(
            f"{size_mib} MiB: copier throughput is {ratio:.2f}x upload_fileobj(http)"
            f" (ratio of the medians of {len(pairs)}; pair by pair {', '.join(f'{p:.2f}' for p in pairs)})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
