"""Run the recordings consumer (or a plain boto3 upload, for comparison) in a process of its own and
report its peak memory: what the memory test and bench/recordings_bench.py measure.

    python -m tests.support.recordings_probe consume --queue-url URL --result-file out.json
        polls the queue and invokes functions/recordings/app.py (the deployed handler) until the queue is
        empty; the function's settings come from the environment (e.g. a running LocalStack's)
    python -m tests.support.recordings_probe upload-fileobj --url URL --bucket B --key K --result-file out.json
        boto3 upload_fileobj of the bytes the link serves, nothing else (no hash, no checks)
    python -m tests.support.recordings_probe upload-fileobj --seed S --size N --bucket B --key K ...
        the same from bytes generated in the process (no HTTP at all)

The result file holds {"peak_rss_kb", "ready_rss_kb", "seconds", ...}: peak_rss_kb is the process's
resident-memory high-water mark (/proc's VmHWM), ready_rss_kb the same just before the work starts
(everything imported, clients built). "seconds" is the work's own time: the handler's invocations for
`consume` (the queue's receive and delete are the event source mapping's), and from opening the link to
the end of the upload for `upload-fileobj`. With `--timed-call-id` (consume) only the invocation of that
call's recording is timed, and `--warm-up-url` (upload-fileobj) is uploaded first, untimed: the benchmark
times both sides warm, as a Lambda container that has handled a recording before.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import resource
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLER_FILE = REPO_ROOT / "functions" / "recordings" / "app.py"
LAYER_DIR = REPO_ROOT / "layers" / "ingest"


def peak_rss_kb() -> int:
    """High-water mark of this process's resident memory, in KiB: /proc's VmHWM. Not getrusage's
    ru_maxrss where /proc exists: Linux carries the parent's high-water mark over fork and exec into
    it, so a child of a large process (a test holding moto's data) would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class ProbeContext:
    """The parts of Lambda's context the handler uses."""

    def __init__(self, timeout_seconds: float = 900.0) -> None:
        self.function_name = "recordings-probe"
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:recordings-probe"
        self.memory_limit_in_mb = "512"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/recordings-probe"
        self.log_stream_name = "probe"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler() -> Any:
    """functions/recordings/app.py's lambda_handler, imported the way Lambda does (layer on the path)."""
    for folder in (str(LAYER_DIR), str(HANDLER_FILE.parent)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("recordings_app", HANDLER_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {HANDLER_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


def _consume(args: argparse.Namespace) -> dict[str, Any]:
    import boto3

    from tools.local_aws.sqs_poller import SqsPoller

    handler = load_handler()
    sqs = boto3.session.Session().client("sqs")
    invoked: list[float] = []

    timed: list[int] = []  # which invocations are timed (all, or those of --timed-call-id)

    def invoke(event: Any) -> Any:
        # The function's own time: receiving and deleting the messages is the event source mapping's
        # (Lambda's, on AWS), not the copier's.
        started = time.monotonic()
        try:
            return handler(event, ProbeContext())
        finally:
            invoked.append(time.monotonic() - started)
            if args.timed_call_id is None or args.timed_call_id in _call_ids(event):
                timed.append(len(invoked) - 1)

    poller = SqsPoller(sqs, args.queue_url, invoke, batch_size=args.batch_size, name="probe")
    ready = peak_rss_kb()
    started = time.monotonic()
    batches = poller.drain(timeout=args.timeout)
    return {
        "ready_rss_kb": ready,
        "seconds": sum(invoked[i] for i in timed),
        "timed_invocations": timed,
        "drain_seconds": time.monotonic() - started,
        "batches": [{"received": b.received, "failed": b.failed, "error": b.error} for b in batches],
    }


def _call_ids(event: Any) -> set[str]:
    ids = set()
    for record in event.get("Records") or []:
        try:
            ids.add(str(json.loads(record["body"]).get("call_id")))
        except (ValueError, AttributeError, KeyError):
            continue
    return ids


class _GeneratedReader(io.RawIOBase):
    """A read-only file of generated bytes (tools.simulator.recordings_server's), produced as it is read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        count = min(len(buffer), len(self._rest))
        buffer[:count] = self._rest[:count]
        self._rest = self._rest[count:]
        return count


def _upload_fileobj(args: argparse.Namespace) -> dict[str, Any]:
    import boto3
    import requests

    from tools.simulator.recordings_server import audio_chunks

    s3 = boto3.session.Session().client("s3")
    ready = peak_rss_kb()
    if args.warm_up_url:
        # Untimed, as the copier's warm-up invocation: the client's first-call costs are not throughput.
        with requests.get(args.warm_up_url, stream=True, timeout=30) as warm_up:
            warm_up.raise_for_status()
            s3.upload_fileobj(warm_up.raw, args.bucket, f"{args.key}.warm-up")
    response = None
    # Timed from opening the link, as the copier's handler is: the same request, then the upload.
    started = time.monotonic()
    if args.url:
        response = requests.get(args.url, stream=True, timeout=30)
        response.raise_for_status()
        source: Any = response.raw
    else:
        source = io.BufferedReader(_GeneratedReader(audio_chunks(args.seed, args.size)), buffer_size=1024 * 1024)
    s3.upload_fileobj(source, args.bucket, args.key)
    seconds = time.monotonic() - started
    if response is not None:
        response.close()
    return {"ready_rss_kb": ready, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.recordings_probe", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    consume = sub.add_parser("consume")
    consume.add_argument("--queue-url", required=True)
    consume.add_argument("--batch-size", type=int, default=4)
    consume.add_argument("--timeout", type=float, default=120.0)
    consume.add_argument("--timed-call-id", help="time only the invocation of this call's recording")
    upload = sub.add_parser("upload-fileobj")
    upload.add_argument("--url")
    upload.add_argument("--seed")
    upload.add_argument("--size", type=int)
    upload.add_argument("--bucket", required=True)
    upload.add_argument("--key", required=True)
    upload.add_argument("--warm-up-url", help="upload this link first, untimed")
    for each in (consume, upload):
        each.add_argument("--result-file", required=True)
    args = parser.parse_args(argv)
    result = _consume(args) if args.mode == "consume" else _upload_fileobj(args)
    result["peak_rss_kb"] = peak_rss_kb()
    Path(args.result_file).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
