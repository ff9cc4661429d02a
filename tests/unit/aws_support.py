"""The unit tests' AWS, in process (moto's mock): the events table exactly as template.yaml declares it (so
the tests cannot drift from the template), the archive bucket, the recordings queue and the webhook token's
secret; and readers of what they hold. The `moto` and `aws` fixtures of conftest.py hand it out."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from airudder_ingest.base import aws as aws_clients
from tools.local_aws.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "unit-token"
TOKEN_SECRET = "unit/webhook-token"
TABLE = "unit-events"
BUCKET = "unit-archive"


def table_definition() -> dict[str, Any]:
    """The events table's key schema, indexes and billing mode as template.yaml declares them."""
    props = load_template(ROOT / "template.yaml")["Resources"]["EventsTable"]["Properties"]
    return {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")}


def clear_cached_clients() -> None:
    """Forget the layer's cached boto3 clients and Powertools' cached secrets: each test starts on its own mock."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import base

    aws_clients.reset_clients()
    parameters.clear_caches()
    base.DEFAULT_PROVIDERS.clear()


@contextlib.contextmanager
def empty_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process mock with nothing in it, and credentials that can reach nothing else."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    clear_cached_clients()
    try:
        with mock_aws():
            yield
    finally:
        clear_cached_clients()


@contextlib.contextmanager
def ingest_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The resources the webhook edge writes to; the clients by service name, and the queue's URL."""
    with empty_aws(monkeypatch):
        clients: dict[str, Any] = {name: boto3.client(name) for name in ("dynamodb", "s3", "sqs", "secretsmanager")}
        clients["dynamodb"].create_table(TableName=TABLE, **table_definition())
        clients["s3"].create_bucket(Bucket=BUCKET)
        clients["queue_url"] = clients["sqs"].create_queue(QueueName="recordings")["QueueUrl"]
        clients["secretsmanager"].create_secret(Name=TOKEN_SECRET, SecretString=json.dumps({"current": TOKEN}))
        yield clients


def items(aws: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = aws["dynamodb"].scan(TableName=TABLE)["Items"]
    return found


def objects(aws: dict[str, Any]) -> list[str]:
    return [o["Key"] for o in aws["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])]
