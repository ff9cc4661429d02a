"""Load generator for bench/run.py's throughput figure, run as a process of its own (the server side,
moto and the local gateway, stays in the benchmark's process).

    python -m bench.load_client gateway --url URL --token T --bodies bodies.json --concurrency N --count M
        POSTs the bodies ([[path, body], ...], each sent once) to the local gateway, N at a time
    python -m bench.load_client putitem --endpoint URL --table T --item item.json --concurrency N --count M
        a plain boto3 PutItem loop (the item with a fresh pk each time) straight at the moto server
    python -m bench.load_client replay --endpoint URL --calls calls.json --concurrency N --count M
        the bare I/O of whole deliveries: the AWS requests the handler made for a few deliveries
        ([[{service, operation, params}, ...], ...]), replayed in turn with plain boto3 on keys of their own

Both first send `--warmup` requests that are not counted, then stop after `--count` requests or
`--time-limit` seconds, whichever comes first, and write {"count", "ok", "seconds", "statuses"}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _run(send: Callable[[int], str], count: int, concurrency: int, time_limit: float, warmup: int) -> dict[str, Any]:
    """`concurrency` workers, each first sending its share of the warm-up (which also builds its
    session or client), then all released at once: the clock runs from there to the last answer."""
    lock = threading.Lock()
    numbers = itertools.count(warmup)
    statuses: Counter[str] = Counter()
    ready = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def worker(index: int) -> None:
        for n in range(index, warmup, concurrency):
            send(n)
        ready.wait()
        while time.monotonic() < deadline[0]:
            with lock:
                n = next(numbers)
            if n >= warmup + count:
                return
            status = send(n)
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + time_limit + 60  # the warm-up is not timed, but not unbounded either
    ready.wait(timeout=time_limit + 60)
    deadline[0] = time.monotonic() + time_limit
    started = time.perf_counter()
    for thread in threads:
        thread.join(time_limit + 30)
    seconds = time.perf_counter() - started
    done = sum(statuses.values())
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    return {"count": done, "ok": ok, "seconds": seconds, "statuses": dict(statuses)}


def gateway(args: argparse.Namespace) -> dict[str, Any]:
    import requests

    bodies: list[list[str]] = json.loads(Path(args.bodies).read_text())
    if len(bodies) < args.warmup + args.count:
        raise SystemExit(f"{len(bodies)} bodies for {args.warmup + args.count} requests: each body is sent once")
    local = threading.local()
    headers = {"content-type": "application/json", "user-agent": "Airudder"}

    def send(n: int) -> str:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        path, body = bodies[n]
        try:
            answer = session.post(
                f"{args.url}{path}", params={"token": args.token}, data=body.encode(), headers=headers, timeout=30
            )
        except requests.RequestException as error:
            return type(error).__name__
        return str(answer.status_code)

    return _run(send, args.count, args.concurrency, args.time_limit, args.warmup)


def _client_factory(args: argparse.Namespace) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})

    def make(service: str) -> Any:
        session = boto3.session.Session(
            region_name=args.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
        )
        return session.client(service, endpoint_url=args.endpoint, config=config)

    return make


def replay_deliveries(args: argparse.Namespace) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    from bench.common import CapturedCall, from_jsonable, renamed, replay

    deliveries = [
        [CapturedCall(c["service"], c["operation"], from_jsonable(c["params"])) for c in calls]
        for calls in json.loads(Path(args.calls).read_text())
    ]
    make = _client_factory(args)
    local = threading.local()

    def send(n: int) -> str:
        clients = getattr(local, "clients", None)
        if clients is None:
            clients = local.clients = {name: make(name) for name in ("dynamodb", "s3", "sqs")}
        calls = [renamed(call, f"{args.prefix}-{n}") for call in deliveries[n % len(deliveries)]]
        try:
            replay(clients, calls)
        except (BotoCoreError, ClientError) as error:
            return type(error).__name__
        return "200"

    return _run(send, args.count, args.concurrency, args.time_limit, args.warmup)


def putitem(args: argparse.Namespace) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    from bench.common import from_jsonable

    item: dict[str, Any] = from_jsonable(json.loads(Path(args.item).read_text()))
    make = _client_factory(args)
    local = threading.local()

    def send(n: int) -> str:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = make("dynamodb")
        fresh = {**item, "pk": {"S": f"LOAD#{args.prefix}#{n}"}}
        try:
            client.put_item(TableName=args.table, Item=fresh)
        except (BotoCoreError, ClientError) as error:
            return type(error).__name__
        return "200"

    return _run(send, args.count, args.concurrency, args.time_limit, args.warmup)


def main() -> int:
    parser = argparse.ArgumentParser(description="throughput load generator (loopback only)")
    parser.add_argument("mode", choices=("gateway", "putitem", "replay"))
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--bodies")
    parser.add_argument("--endpoint")
    parser.add_argument("--table")
    parser.add_argument("--item")
    parser.add_argument("--calls")
    parser.add_argument("--prefix", default="x")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--result-file", required=True)
    args = parser.parse_args()
    for name in ("url", "endpoint"):
        value = getattr(args, name)
        if value and not value.startswith(("http://127.", "http://localhost")):
            raise SystemExit(f"--{name} must be a loopback address, got {value}")
    result = {"gateway": gateway, "putitem": putitem, "replay": replay_deliveries}[args.mode](args)
    Path(args.result_file).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
