"""tools/local_aws/sqs_poller.py: the parts of Lambda's SQS event source mapping the local stack relies on."""

from __future__ import annotations

import pytest

from tools.local_aws.sqs_poller import failed_ids, lambda_record

IDS = ["m1", "m2", "m3"]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"batchItemFailures": []}, []),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, ["m2"]),
        (None, []),
        ({"statusCode": 200}, []),
        ("done", []),
        # Lambda fails the whole batch when an identifier is empty or not in the batch.
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": "other"}]}, None),
        ({"batchItemFailures": [{}]}, None),
        ({"batchItemFailures": "m1"}, None),
    ],
)
def test_batch_item_failures_are_read_as_lambda_reads_them(result: object, expected: list[str] | None) -> None:
    assert failed_ids(result, IDS, report_failures=True) == expected


def test_without_report_batch_item_failures_the_answer_is_ignored() -> None:
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "m1"}]}, IDS, report_failures=False) == []


def test_a_received_message_becomes_a_lambda_sqs_record() -> None:
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "rh",
        "MD5OfBody": "md5",
        "Body": '{"a": 1}',
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1714557600000"},
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": "x"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
        "MD5OfMessageAttributes": "md5a",
    }
    record = lambda_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    assert record == {
        "messageId": "m1",
        "receiptHandle": "rh",
        "body": '{"a": 1}',
        "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1714557600000"},
        "messageAttributes": {
            "kind": {
                "stringValue": "x",
                "binaryValue": None,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            },
            "blob": {
                "stringValue": None,
                "binaryValue": "AAE=",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "Binary",
            },
        },
        "md5OfBody": "md5",
        "md5OfMessageAttributes": "md5a",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }
