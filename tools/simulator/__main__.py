"""Command line of the AIRUDDER tenant simulator.

    python -m tools.simulator serve --port 8089 --workflows 3 --calls-per-workflow 20
    python -m tools.simulator push --target http://127.0.0.1:3000 --token T --retry-delay 1
    python -m tools.simulator sample --kind call

Only counts are printed: never tokens, secrets or phone numbers (`sample` prints a generated body).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from . import bodies
from .dataset import Dataset, DatasetConfig
from .server import AirudderSimulator


def _dataset_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data set")
    g.add_argument("--seed", type=int, default=1, help="seed of the generated data (default 1)")
    g.add_argument("--workflows", type=int, default=3, help="workflows to generate (default 3)")
    g.add_argument("--calls-per-workflow", type=int, default=20, help="calls per workflow (default 20)")
    g.add_argument("--nodes-per-workflow", type=int, default=2, help="node tasks per workflow; robot, pds, ...")
    g.add_argument("--answer-rate", type=float, default=0.6, help="share of answered calls (default 0.6)")
    g.add_argument("--recording-bytes", type=int, default=64 * 1024, help="size of each recording (bytes)")


def _server_args(p: argparse.ArgumentParser, default_port: int) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=int, default=default_port, help=f"0 = any free port (default {default_port})")
    g.add_argument(
        "--app-key",
        default=os.environ.get("AIRUDDER_SIM_APP_KEY", "sim-app-key"),
        help="APPKey the auth call accepts (env AIRUDDER_SIM_APP_KEY)",
    )
    g.add_argument(
        "--app-secret",
        default=os.environ.get("AIRUDDER_SIM_APP_SECRET", "sim-app-secret"),
        help="APPSecret the auth call accepts (env AIRUDDER_SIM_APP_SECRET)",
    )
    g.add_argument("--token-ttl", type=float, default=86_400.0, help="token lifetime in seconds (default 24 h)")
    g.add_argument("--max-page-size", type=int, default=1000, help="largest page_size answered")


def _simulator(args: argparse.Namespace) -> AirudderSimulator:
    return AirudderSimulator(
        host=args.host,
        port=args.port,
        app_key=args.app_key,
        app_secret=args.app_secret,
        token_ttl=args.token_ttl,
        recording_bytes=args.recording_bytes,
        seed=args.seed,
        workflows=args.workflows,
        calls_per_workflow=args.calls_per_workflow,
        nodes_per_workflow=args.nodes_per_workflow,
        answer_rate=args.answer_rate,
        max_page_size=args.max_page_size,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.simulator",
        description="A local AIRUDDER tenant: auth + Workflow pull API over seeded data, and a webhook pusher.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API until Ctrl-C (or --duration seconds)")
    _server_args(serve, 8089)
    _dataset_args(serve)
    serve.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: never)")

    push = sub.add_parser("push", help="push the data set's webhooks to a stack, with AIRUDDER's retry rule")
    push.add_argument("--target", required=True, help="base URL of the stack, e.g. http://127.0.0.1:3000")
    push.add_argument("--token", default=os.environ.get("WEBHOOK_TOKEN"), help="webhook token (env WEBHOOK_TOKEN)")
    push.add_argument("--kinds", default="call,dialer", help="webhooks to send: call, dialer (default both)")
    push.add_argument("--dialer-progress", action="store_true", help="send every dialer state, not only HANGUP")
    push.add_argument("--retry-delay", type=float, default=60.0, help="seconds before a retry (default 60)")
    push.add_argument("--max-tries", type=int, default=5, help="tries per delivery in total (default 5)")
    push.add_argument("--timeout", type=float, default=10.0, help="seconds a delivery may take (default 10)")
    push.add_argument("--concurrency", type=int, default=4, help="sender threads (default 4)")
    push.add_argument("--drop-every", type=int, default=0, help="never send every k-th delivery (0: none)")
    push.add_argument("--drop-fraction", type=float, default=0.0, help="never send this share of deliveries")
    push.add_argument("--drop-seed", type=int, default=0, help="seed of --drop-fraction")
    push.add_argument("--drop-scope", choices=("delivery", "call"), default="delivery")
    push.add_argument("--linger", type=float, default=0.0, help="keep serving recordings this long after pushing")
    _server_args(push, 0)
    _dataset_args(push)

    sample = sub.add_parser("sample", help="print one generated webhook body or pull-API record")
    sample.add_argument("--kind", choices=("call", "dialer", "record"), default="call")
    sample.add_argument("--index", type=int, default=0, help="which call of the data set")
    _dataset_args(sample)
    sample.add_argument("--base-url", default="http://127.0.0.1:8089", help="simulator URL for recLink")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sample":
        dataset = Dataset(
            DatasetConfig(
                seed=args.seed,
                workflows=args.workflows,
                calls_per_workflow=args.calls_per_workflow,
                nodes_per_workflow=args.nodes_per_workflow,
                answer_rate=args.answer_rate,
            )
        )
        calls = dataset.calls()
        call = calls[args.index % len(calls)]
        if args.kind == "call":
            body = bodies.call_completed_body(call, args.base_url)
        elif args.kind == "record":
            body = bodies.call_record(call, args.base_url)
        else:
            body = bodies.dialer_contact_status_body(call, args.base_url)
        print(json.dumps(body, indent=2))
        return 0

    sim = _simulator(args)
    with sim:
        n_calls = len(sim.dataset.calls())
        if args.command == "serve":
            print(
                f"AIRUDDER simulator on {sim.url}: {len(sim.dataset.workflows())} workflows, {n_calls} calls",
                file=sys.stderr,
            )
            try:
                if args.duration > 0:
                    time.sleep(args.duration)
                else:
                    while True:
                        time.sleep(3600)
            except KeyboardInterrupt:
                pass
            return 0
        report = sim.push_webhooks(
            args.target,
            token=args.token,
            kinds=[k.strip() for k in args.kinds.split(",") if k.strip()],
            dialer_progress=args.dialer_progress,
            retry_delay=args.retry_delay,
            max_tries=args.max_tries,
            timeout=args.timeout,
            concurrency=args.concurrency,
            drop_every=args.drop_every,
            drop_fraction=args.drop_fraction,
            drop_seed=args.drop_seed,
            drop_scope=args.drop_scope,
        )
        print(json.dumps({"calls": n_calls, **report.summary()}, indent=2))
        if args.linger > 0:
            time.sleep(args.linger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
