"""``python -m tools.demo.serve`` (make serve): the stack on embedded AWS until Ctrl-C.

moto listens on MOTO_PORT (default 5000), the gateway on PORT (default 3000); the webhook token is
WEBHOOK_TOKEN or local-dev-token. Every route of template.yaml is printed with its ?token= URL. The
table's stream is polled for its consumers (the archiver, the fan-out publisher) as Lambda would.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import TextIO

from tools.local_aws.stack import LocalStack


def _parameter_overrides(items: list[str]) -> dict[str, str]:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--parameter {item!r}: expected Name=Value")
        values[key] = value
    return values


def describe(stack: LocalStack, out: TextIO = sys.stdout) -> None:
    """Print the gateway URL of every route, the endpoints and the resource names of a running stack."""
    out.write(f"Gateway  {stack.gateway_url}   (stack {stack.stack_name}, template {stack.template_path})\n")
    out.write("Routes (POST the webhook body; the token also works as header x-webhook-token):\n")
    for method, path, function_id in stack.routes:
        out.write(f"  {method:<5} {stack.url(path, with_token=True)}   -> {function_id}\n")
    for source in stack.event_sources:
        served = " (polled locally)" if source.type in ("SQS", "DynamoDB") else ""
        out.write(f"  ({source.type} event {source.function_id}.{source.name}: not served over HTTP{served})\n")
    out.write(f"moto     {stack.moto_url}   (aws --endpoint-url {stack.moto_url} ..., fake credentials)\n")
    if stack.faults is not None:
        out.write(f"proxy    {stack.aws_endpoint_url}   (what the functions call)\n")
    out.write(f"CLI      airudder-data --stack {stack.stack_name} --endpoint-url {stack.moto_url} call CALL_ID\n")
    out.write("Resources:\n")
    for logical_id, values in stack.resources.items():
        out.write(f"  {logical_id:<28} {values['Ref']}\n")
    for note in stack.notes:
        out.write(f"  note: {note}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo.serve", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "5000")))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--token", default=None, help="webhook token (default: WEBHOOK_TOKEN or local-dev-token)")
    parser.add_argument("--template", default=None, help="template path (default: template.yaml of the repo)")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="Name=Value",
        help="template parameter override (repeatable)",
    )
    parser.add_argument("--fault-proxy", action="store_true", help="put the logging fault proxy in front of moto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Explicit handlers: a shell's background job ignores SIGINT, and Python then never raises KeyboardInterrupt.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with LocalStack(
        moto_port=args.moto_port,
        gateway_port=args.port,
        token=args.token,
        with_fault_proxy=args.fault_proxy,
        template_path=args.template,
        parameters=_parameter_overrides(args.parameter),
        # Recording links queued by the webhooks are copied into the archive bucket in the background.
        with_recordings_consumer=True,
        # The table's stream drives its consumers in the background (tools/local_aws/stream_poller.py): the archiver
        # (the batched archive in S3) and the fan-out publisher.
        with_stream_consumers=True,
    ) as stack:
        describe(stack)
        out = sys.stdout
        out.write("Ctrl-C to stop.\n")
        out.flush()
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
