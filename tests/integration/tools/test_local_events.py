"""EventBridge resources of a template in the local stack: a bus, a rule with an SQS target (moto runs
the rule), and a schedule rule left out (moto's PutEvents fails once one sits on a bus)."""

from __future__ import annotations

import json
from pathlib import Path

from tools.local_aws.stack import LocalStack

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties: {Name: toy-bus}
  Inbox:
    Type: AWS::SQS::Queue
  Finished:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: {source: [airudder.ingest], detail: {status: [finished]}}
      Targets:
        - {Id: inbox, Arn: !GetAtt Inbox.Arn}
  Nightly:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(1 day)
"""


def test_bus_and_rules(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    with LocalStack(template_path=tmp_path / "template.yaml", stack_name="toy-events") as stack:
        assert stack.resources["Bus"]["Ref"] == "toy-bus"
        assert any("Nightly" in note and "schedule" in note for note in stack.notes)
        events = stack.boto3_client("events")
        entries = [
            {
                "Source": "airudder.ingest",
                "DetailType": "t",
                "Detail": json.dumps({"status": s}),
                "EventBusName": "toy-bus",
            }
            for s in ("finished", "running")
        ]
        assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
        sqs = stack.boto3_client("sqs")
        messages = sqs.receive_message(QueueUrl=stack.resources["Inbox"]["QueueUrl"], MaxNumberOfMessages=10)[
            "Messages"
        ]
        assert [json.loads(m["Body"])["detail"] for m in messages] == [{"status": "finished"}]
