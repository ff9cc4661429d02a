"""A customer's subscription to the stack's EventBridge bus, locally: an SQS queue and a rule targeting it
(moto runs the rule). Used by `make demo` and the fan-out tests to see what the fan-out published."""

from __future__ import annotations

import json
from typing import Any

from tools.local_aws.stack import LocalStack

# Every event the fan-out publishes (README, "Fan-out").
EVERY_INGEST_EVENT = {"source": ["airudder.ingest"]}


class BusSubscription:
    """A queue named `name`, and a rule of that name on the stack's bus matching `pattern`."""

    def __init__(self, stack: LocalStack, name: str, pattern: dict[str, Any] | None = None) -> None:
        self.name = name
        self.bus = str(stack.resources["IngestEventBus"]["Ref"])
        self.events = stack.boto3_client("events")
        self.sqs = stack.boto3_client("sqs")
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.events.put_rule(Name=name, EventBusName=self.bus, EventPattern=json.dumps(pattern or EVERY_INGEST_EVENT))
        self.events.put_targets(Rule=name, EventBusName=self.bus, Targets=[{"Id": "queue", "Arn": arn}])

    def take(self) -> list[dict[str, Any]]:
        """Every event on the queue (removed from it)."""
        found: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
