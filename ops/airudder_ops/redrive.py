"""Move the recordings that gave up (dead-letter queue) back to the recordings queue (`make redrive`).

    python -m airudder_ops.redrive --stack-name airudder-ingest            # a deployed stack (its outputs)
    python -m airudder_ops.redrive --queue-url URL --dlq-url URL            # any pair of queues
    python -m airudder_ops.redrive --endpoint-url http://127.0.0.1:5000     # the local stack (make serve)

Each message is sent again with its body and attributes, then deleted from the dead-letter queue (a
message is deleted only once its copy is sent). Messages come back as new ones, with a receive count of
zero, so they get the queue's full number of attempts again. Run it once the cause is fixed (e.g. a host
added to the allow-list, AIRUDDER's storage back up); a call marked link_expired or missing is not in the
dead-letter queue: those need a fresh link.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

STACK_OUTPUT_QUEUE = "RecordingsQueueUrl"
STACK_OUTPUT_DLQ = "RecordingsDeadLetterQueueUrl"


@dataclass
class RedriveResult:
    moved: int = 0
    failed: int = 0


def move_messages(
    sqs: Any, dlq_url: str, queue_url: str, *, limit: int | None = None, dry_run: bool = False
) -> RedriveResult:
    """Move up to `limit` messages (all when None) from `dlq_url` to `queue_url`."""
    result = RedriveResult()
    if dry_run:
        attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
        waiting = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        result.moved = waiting if limit is None else min(limit, waiting)
        return result
    empty_receives = 0
    while limit is None or result.moved + result.failed < limit:
        wanted = 10 if limit is None else min(10, limit - result.moved - result.failed)
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=wanted,
            MessageAttributeNames=["All"],
            # Long enough to send and delete; short so that an interrupted run soon gives them back.
            VisibilityTimeout=60,
            WaitTimeSeconds=1,
        ).get("Messages", [])
        if not messages:
            empty_receives += 1
            if empty_receives >= 2:  # SQS may answer empty while messages remain: ask twice
                break
            continue
        empty_receives = 0
        _move_batch(sqs, dlq_url, queue_url, messages, result)
    return result


def _move_batch(sqs: Any, dlq_url: str, queue_url: str, messages: list[dict[str, Any]], result: RedriveResult) -> None:
    """Send one received batch to `queue_url`, then delete from `dlq_url` the messages that were sent."""
    entries = []
    for n, message in enumerate(messages):
        entry: dict[str, Any] = {"Id": str(n), "MessageBody": message["Body"]}
        attributes = _attributes(message.get("MessageAttributes") or {})
        if attributes:
            entry["MessageAttributes"] = attributes
        entries.append(entry)
    sent = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    sent_ids = {item["Id"] for item in sent.get("Successful", [])}
    result.failed += len(sent.get("Failed", []))
    done = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages) if str(n) in sent_ids]
    if done:
        deleted = sqs.delete_message_batch(QueueUrl=dlq_url, Entries=done)
        # A message sent but not deleted would be moved twice: the copier skips archived calls.
        result.failed += len(deleted.get("Failed", []))
    result.moved += len(done)


def _attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    kept = {}
    for name, value in attributes.items():
        kept[name] = {k: v for k, v in value.items() if k in {"DataType", "StringValue", "BinaryValue"}}
    return kept


def stack_queues(cloudformation: Any, stack_name: str) -> tuple[str, str]:
    """(recordings queue URL, dead-letter queue URL) from the stack's outputs."""
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    try:
        return outputs[STACK_OUTPUT_QUEUE], outputs[STACK_OUTPUT_DLQ]
    except KeyError as missing:
        raise SystemExit(f"stack {stack_name} has no output {missing}") from None


def discover_queues(sqs: Any, name_hint: str = "Recordings") -> tuple[str, str]:
    """The one queue whose name holds `name_hint` and that has a dead-letter queue (local stacks)."""
    pairs = []
    for url in sqs.list_queues().get("QueueUrls", []):
        if name_hint.lower() not in url.rsplit("/", 1)[-1].lower():
            continue
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
        policy = attributes.get("RedrivePolicy")
        if not policy:
            continue
        dlq_name = json.loads(policy)["deadLetterTargetArn"].rsplit(":", 1)[-1]
        dlq_url = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
        pairs.append((url, dlq_url))
    if len(pairs) != 1:
        found = ", ".join(url for url, _ in pairs) or "none"
        raise SystemExit(f"expected one {name_hint} queue with a dead-letter queue, found {found}: pass --queue-url")
    return pairs[0]


def main(argv: list[str] | None = None, *, clients: Mapping[str, Any] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airudder_ops.redrive", description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", help="deployed stack: queues from its outputs")
    parser.add_argument("--queue-url", help="the recordings queue")
    parser.add_argument("--dlq-url", help="its dead-letter queue")
    parser.add_argument(
        "--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="local endpoint (moto), e.g. make serve's"
    )
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"))
    parser.add_argument("--max", type=int, default=None, help="move at most this many messages")
    parser.add_argument("--dry-run", action="store_true", help="only count the messages waiting")
    args = parser.parse_args(argv)

    clients = dict(clients or {})

    def client(service: str) -> Any:
        if service not in clients:
            import boto3

            options: dict[str, Any] = {"region_name": args.region or "us-east-1"}
            if args.endpoint_url:
                options["endpoint_url"] = args.endpoint_url
                # moto accepts any credentials; do not look for real ones for a local endpoint.
                options.setdefault("aws_access_key_id", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
                options.setdefault("aws_secret_access_key", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
            clients[service] = boto3.session.Session().client(service, **options)
        return clients[service]

    queue_url, dlq_url = _queue_urls(args, parser, client)
    result = move_messages(client("sqs"), dlq_url, queue_url, limit=args.max, dry_run=args.dry_run)
    verb = "would move" if args.dry_run else "moved"
    print(f"{verb} {result.moved} message(s) from {dlq_url} to {queue_url}; {result.failed} failed")
    return 1 if result.failed else 0


def _queue_urls(
    args: argparse.Namespace, parser: argparse.ArgumentParser, client: Callable[[str], Any]
) -> tuple[str, str]:
    """(recordings queue URL, dead-letter queue URL): as given, from the stack, or found on a local endpoint."""
    if args.queue_url or args.dlq_url:
        if not (args.queue_url and args.dlq_url):
            parser.error("--queue-url and --dlq-url go together")
        return args.queue_url, args.dlq_url
    if args.stack_name:
        return stack_queues(client("cloudformation"), args.stack_name)
    if args.endpoint_url:
        return discover_queues(client("sqs"))
    parser.error("give --stack-name, --queue-url/--dlq-url, or --endpoint-url for a local stack")


if __name__ == "__main__":
    sys.exit(main())
