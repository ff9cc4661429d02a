"""Publish what the fan-out could not (`make republish`): the on-failure queue's parked entries, and the
stream batches Lambda gave up on (read back from the table's stream while it still holds them, 24 h).

    python -m airudder_ops.republish --stack-name airudder-ingest          # a deployed stack (its outputs)
    python -m airudder_ops.republish --queue-url URL --event-bus NAME       # any queue and bus
    python -m airudder_ops.republish --endpoint-url http://127.0.0.1:5000 --queue-url URL --event-bus NAME

Run it once the cause is fixed. A message is deleted only when all it stands for is published; consumers
dedupe on the event id, so publishing an event twice is harmless.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import boto3

from airudder_ingest.streams.fanout import EventPublisher, FanoutSettings, redrive_failures


def _outputs(stack_name: str, endpoint_url: str | None) -> dict[str, str]:
    cfn = boto3.client("cloudformation", endpoint_url=endpoint_url)
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airudder_ops.republish", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--stack-name")
    parser.add_argument("--queue-url")
    parser.add_argument("--event-bus")
    parser.add_argument("--archive-bucket", default="", help="named in the events' detail.archive")
    parser.add_argument("--endpoint-url", default=None)
    parser.add_argument("--phone-numbers", default="masked", choices=["masked", "included"])
    args = parser.parse_args(argv)
    queue_url, bus, bucket = args.queue_url, args.event_bus, args.archive_bucket
    if args.stack_name:
        outputs = _outputs(args.stack_name, args.endpoint_url)
        queue_url, bus = outputs["FanoutFailureQueueUrl"], outputs["EventBusName"]
        bucket = bucket or outputs.get("ArchiveBucketName", "")
    if not queue_url or not bus:
        parser.error("give --stack-name, or --queue-url and --event-bus")

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=args.endpoint_url)

    events = client("events")
    settings = FanoutSettings(event_bus=bus, phone_mode=args.phone_numbers, archive_bucket=bucket)
    publisher = EventPublisher(settings, events, None)
    report = redrive_failures(queue_url, client("sqs"), events, client("dynamodbstreams"), publisher)
    sys.stdout.write(
        f"published {report.entries_published} parked entries and {report.batches_published} stream batches"
        f" ({report.events_in_batches} events); {report.kept} messages kept on the queue\n"
    )
    return 0 if report.kept == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
