"""tools.local_aws.stack / local_aws / fault_proxy / gateway / serve / apigw_events against an embedded moto.

Two stacks, one after the other (class-scoped fixtures): the real template.yaml (resources, fault proxy,
one smoke test through the real handler) and a throwaway template with toy handlers (gateway behaviour).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tools.local_aws import template as cfn
from tools.local_aws.apigw_events import generate
from tools.local_aws.gateway import Functions
from tools.local_aws.stack import TEST_TIMEOUT_SCALE, LocalStack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = cfn.load_template(ROOT / "template.yaml")


def _request(
    url: str,
    method: str = "POST",
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=60)
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    connection.putrequest(method, target)
    for name, value in headers or []:
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    if body:
        connection.send(body)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.headers, data


def _client(stack: LocalStack, service: str, **config: Any) -> Any:
    """A client the way the functions make theirs: through the proxy (so the call log sees it)."""
    return boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client(
        service,
        endpoint_url=stack.aws_endpoint_url,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, **config),
    )


# ============================================================================================ real template


def _resolved(stack: LocalStack, resource: dict[str, Any]) -> Any:
    """A resource's Properties with the stack's parameter values and resource names filled in."""
    assert stack.resolver is not None
    return stack.resolver.resolve(resource["Properties"])


@pytest.fixture(scope="class")
def stack() -> Iterator[LocalStack]:
    with LocalStack(token="test-token-123", timeout_scale=TEST_TIMEOUT_SCALE) as running:
        yield running


class TestRealTemplate:
    def test_table_is_created_as_declared(self, stack: LocalStack) -> None:
        for logical_id, resource in cfn.resources_of_type(TEMPLATE, "AWS::DynamoDB::Table").items():
            declared = _resolved(stack, resource)
            table = stack.boto3_client("dynamodb").describe_table(TableName=stack.resources[logical_id]["Ref"])["Table"]
            assert sorted(table["AttributeDefinitions"], key=str) == sorted(declared["AttributeDefinitions"], key=str)
            assert table["KeySchema"] == declared["KeySchema"]
            assert table["BillingModeSummary"]["BillingMode"] == declared["BillingMode"]
            got = {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in table.get("GlobalSecondaryIndexes", [])}
            want = {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in declared["GlobalSecondaryIndexes"]}
            assert got == want
            assert table["Arn" if "Arn" in table else "TableArn"] == stack.resources[logical_id]["Arn"]
            ttl = stack.boto3_client("dynamodb").describe_time_to_live(TableName=table["TableName"])
            ttl_declared = declared.get("TimeToLiveSpecification")
            if ttl_declared:
                assert ttl["TimeToLiveDescription"]["AttributeName"] == ttl_declared["AttributeName"]
                assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
            if declared.get("SSESpecification", {}).get("SSEEnabled"):
                assert table["SSEDescription"]["Status"] == "ENABLED"
            if declared.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
                backups = stack.boto3_client("dynamodb").describe_continuous_backups(TableName=table["TableName"])
                description = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
                assert description["PointInTimeRecoveryStatus"] == "ENABLED"

    def test_bucket_is_created_as_declared(self, stack: LocalStack) -> None:
        s3 = stack.boto3_client("s3")
        for logical_id, resource in cfn.resources_of_type(TEMPLATE, "AWS::S3::Bucket").items():
            declared = _resolved(stack, resource)
            name = stack.resources[logical_id]["Ref"]
            assert name == name.lower()
            if "BucketEncryption" in declared:
                rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
                want = [
                    r["ServerSideEncryptionByDefault"]
                    for r in declared["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
                assert [r["ApplyServerSideEncryptionByDefault"] for r in rules] == want
            if "PublicAccessBlockConfiguration" in declared:
                block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
                assert block == declared["PublicAccessBlockConfiguration"]
            if "VersioningConfiguration" in declared:
                assert s3.get_bucket_versioning(Bucket=name)["Status"] == declared["VersioningConfiguration"]["Status"]
            if "OwnershipControls" in declared:
                assert (
                    s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"] == declared["OwnershipControls"]
                )
            if "LifecycleConfiguration" in declared:
                rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
                assert [r["ID"] for r in rules] == [r["Id"] for r in declared["LifecycleConfiguration"]["Rules"]]

    def test_queues_are_created_as_declared(self, stack: LocalStack) -> None:
        sqs = stack.boto3_client("sqs")
        for logical_id, resource in cfn.resources_of_type(TEMPLATE, "AWS::SQS::Queue").items():
            declared = _resolved(stack, resource)
            values = stack.resources[logical_id]
            attributes = sqs.get_queue_attributes(QueueUrl=values["QueueUrl"], AttributeNames=["All"])["Attributes"]
            assert attributes["QueueArn"] == values["Arn"]
            for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
                if key in declared:
                    assert attributes[key] == str(declared[key])
            if "RedrivePolicy" in declared:
                policy = json.loads(attributes["RedrivePolicy"])
                target = resource["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
                assert policy["deadLetterTargetArn"] == stack.resources[target]["Arn"]
                assert int(policy["maxReceiveCount"]) == int(declared["RedrivePolicy"]["maxReceiveCount"])

    def test_secret_holds_the_local_token(self, stack: LocalStack) -> None:
        secret = stack.boto3_client("secretsmanager").get_secret_value(
            SecretId=stack.resources["WebhookTokenSecret"]["Ref"]
        )
        assert json.loads(secret["SecretString"]) == {"current": "test-token-123"}

    def test_outputs_name_the_created_resources(self, stack: LocalStack) -> None:
        outputs = stack.boto3_client("cloudformation").describe_stacks(StackName=stack.stack_name)["Stacks"][0]
        values = {o["OutputKey"]: o["OutputValue"] for o in outputs["Outputs"]}
        assert values["EventsTableName"] == stack.resources["EventsTable"]["Ref"]
        assert values["ArchiveBucketName"] == stack.resources["ArchiveBucket"]["Ref"]
        assert values["RecordingsQueueUrl"] == stack.resources["RecordingsQueue"]["QueueUrl"]
        assert values["WebhookTokenSecretArn"] == stack.resources["WebhookTokenSecret"]["Ref"]
        assert values["WorkflowDialerUrl"].endswith("/webhooks/workflow/dialer")

    def test_the_cli_finds_the_local_stack_by_its_outputs(self, stack: LocalStack) -> None:
        body = (ROOT / "events/workflow/call/completed.json").read_bytes()
        call_id = json.loads(body)["call_id"]
        status, _, answer = _request(stack.url("/webhooks/workflow/call", with_token=True), body=body)
        assert status == 200, answer
        script = Path(sys.executable).with_name("airudder-data")
        assert script.exists(), "airudder-data is not installed: run `make venv` (pip install -e .)"
        done = subprocess.run(
            [str(script), "call", call_id, "--json", "--stack", stack.stack_name, "--endpoint-url", stack.moto_url],
            env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        assert found["call_id"] == call_id
        assert [event["call_id"] for event in found["events"]] == [call_id]

    def test_environment_points_at_the_local_stack(self, stack: LocalStack) -> None:
        assert os.environ["AWS_ENDPOINT_URL"] == stack.aws_endpoint_url != stack.moto_url
        assert os.environ["EVENTS_TABLE"] == stack.resources["EventsTable"]["Ref"]
        assert os.environ["ARCHIVE_BUCKET"] == stack.resources["ArchiveBucket"]["Ref"]
        assert os.environ["RECORDINGS_QUEUE_URL"] == stack.resources["RecordingsQueue"]["QueueUrl"]
        assert os.environ["WEBHOOK_TOKEN_SECRET"] == stack.resources["WebhookTokenSecret"]["Ref"]
        assert stack.resolver is not None
        assert os.environ["MAX_BODY_BYTES"] == str(stack.resolver.parameter("MaxBodyBytes"))

    def test_every_template_route_is_served(self, stack: LocalStack) -> None:
        declared = set()
        for logical_id, resource in cfn.resources_of_type(TEMPLATE, "AWS::Serverless::Function").items():
            for event in (resource["Properties"].get("Events") or {}).values():
                if event["Type"] == "HttpApi":
                    declared.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"], logical_id))
        assert set(stack.routes) == declared
        status, headers, body = _request(stack.url("/not-a-webhook"), body=b"{}")
        assert (status, json.loads(body)) == (404, {"message": "Not Found"})
        assert headers["content-type"] == "application/json"

    def test_fault_proxy_logs_and_fails_dynamodb(self, stack: LocalStack) -> None:
        assert stack.faults is not None
        table = stack.resources["EventsTable"]["Ref"]
        ddb = _client(stack, "dynamodb")
        stack.faults.reset_calls()
        ddb.put_item(TableName=table, Item={"pk": {"S": "fault-test"}, "sk": {"S": "1"}})
        assert stack.faults.count("dynamodb", "PutItem") == 1
        assert stack.faults.calls("dynamodb")[0].resource == table
        stack.faults.fail("dynamodb", "PutItem", times=1)
        with pytest.raises(ClientError) as caught:
            ddb.put_item(TableName=table, Item={"pk": {"S": "fault-test"}, "sk": {"S": "2"}})
        assert caught.value.response["Error"]["Code"] == "InternalServerError"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        ddb.put_item(TableName=table, Item={"pk": {"S": "fault-test"}, "sk": {"S": "3"}})  # times=1 is used up
        assert stack.faults.count("dynamodb", "PutItem", injected=True) == 1
        assert stack.faults.count("dynamodb", "PutItem", injected=False) == 2
        stack.faults.fail("dynamodb", status=400, code="ProvisionedThroughputExceededException")
        with pytest.raises(ClientError) as caught:
            ddb.get_item(TableName=table, Key={"pk": {"S": "fault-test"}, "sk": {"S": "3"}})
        assert caught.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        stack.faults.clear()
        assert "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "fault-test"}, "sk": {"S": "3"}})
        # the stack's own client (straight at moto) never shows in the call log
        before = stack.faults.count()
        stack.boto3_client("dynamodb").describe_table(TableName=table)
        assert stack.faults.count() == before

    def test_fault_proxy_fails_s3_sqs_and_secrets(self, stack: LocalStack) -> None:
        assert stack.faults is not None
        s3 = _client(stack, "s3")
        bucket = stack.resources["ArchiveBucket"]["Ref"]
        stack.faults.fail("s3", "PutObject")
        with pytest.raises(ClientError) as caught:
            s3.put_object(Bucket=bucket, Key="raw/fault", Body=b"x")
        assert caught.value.response["Error"]["Code"] == "InternalError"
        with pytest.raises(ClientError) as caught:
            s3.head_object(Bucket=bucket, Key="raw/fault")  # forwarded: moto answers 404
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        stack.faults.clear()
        s3.put_object(Bucket=bucket, Key="raw/fault", Body=b"x")
        assert [c.operation for c in stack.faults.calls("s3")][-3:] == ["PutObject", "HeadObject", "PutObject"]
        assert stack.faults.calls("s3")[-1].resource == f"{bucket}/raw/fault"

        sqs = _client(stack, "sqs")
        stack.faults.fail("sqs", "SendMessage", times=1)
        with pytest.raises(ClientError):
            sqs.send_message(QueueUrl=stack.resources["RecordingsDeadLetterQueue"]["QueueUrl"], MessageBody="m")
        secrets = _client(stack, "secretsmanager")
        stack.faults.fail("secretsmanager", "GetSecretValue", times=1)
        with pytest.raises(ClientError) as caught:
            secrets.get_secret_value(SecretId=stack.resources["WebhookTokenSecret"]["Ref"])
        assert caught.value.response["Error"]["Code"] == "InternalServiceError"
        stack.faults.clear()

    def test_outage_and_slow_calls(self, stack: LocalStack) -> None:
        assert stack.faults is not None
        # Short timeouts only where a failure is expected: the outage resets at once, and the slow call is
        # held 1.5 s, three times the read timeout, however fast the machine. The call that must succeed
        # uses the default timeouts (60 s): a busy machine may take more than 0.5 s to answer it.
        failing = _client(stack, "dynamodb", connect_timeout=2, read_timeout=0.5)
        stack.faults.outage()
        try:
            with pytest.raises(BotoCoreError):
                failing.list_tables()
        finally:
            stack.faults.restore()
        assert _client(stack, "dynamodb").list_tables()["TableNames"]
        stack.faults.slow("dynamodb", "ListTables", seconds=1.5, times=1)
        with pytest.raises(BotoCoreError):  # ReadTimeoutError
            failing.list_tables()
        stack.faults.clear()

    def test_s3_streaming_uploads_through_the_proxy(self, stack: LocalStack) -> None:
        assert stack.faults is not None
        s3 = _client(stack, "s3")
        bucket = stack.resources["ArchiveBucket"]["Ref"]
        stack.faults.reset_calls()
        payload = os.urandom(12 * 1024 * 1024 + 123)
        config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
        s3.upload_fileobj(io.BytesIO(payload), bucket, "raw/big.bin", Config=config)
        operations = [c.operation for c in stack.faults.calls("s3")]
        assert operations == [
            "CreateMultipartUpload",
            "UploadPart",
            "UploadPart",
            "UploadPart",
            "CompleteMultipartUpload",
        ]
        assert stack.boto3_client("s3").get_object(Bucket=bucket, Key="raw/big.bin")["Body"].read() == payload
        single = os.urandom(3 * 1024 * 1024)
        s3.put_object(Bucket=bucket, Key="raw/single.bin", Body=single)
        assert s3.get_object(Bucket=bucket, Key="raw/single.bin")["Body"].read() == single
        # A chunked (Transfer-Encoding) upload is forwarded as it came.
        parsed = urllib.parse.urlsplit(stack.aws_endpoint_url)
        connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
        chunks = [b"a" * 70000, b"b" * 10, b"c" * 5000]
        connection.request(
            "PUT",
            f"/{bucket}/raw/chunked.bin",
            body=iter(chunks),
            headers={"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, x"},
            encode_chunked=True,
        )
        assert connection.getresponse().status == 200
        connection.close()
        assert stack.boto3_client("s3").get_object(Bucket=bucket, Key="raw/chunked.bin")["Body"].read() == b"".join(
            chunks
        )
        assert stack.faults.calls("s3")[-1].operation == "PutObject"

    def test_real_handler_smoke(self, stack: LocalStack) -> None:
        samples = sorted((ROOT / "events" / "workflow" / "dialer").glob("*.json"))
        if not (ROOT / "functions" / "webhook" / "app.py").is_file() or not samples:
            pytest.skip("the real handler or its samples are not there yet")
        assert stack.faults is not None
        stack.faults.reset_calls()
        body = samples[0].read_bytes()
        status, _, _ = _request(
            stack.url("/webhooks/workflow/dialer", with_token=True),
            body=body,
            headers=[("Content-Type", "application/json")],
        )
        assert 200 <= status < 300
        assert stack.faults.count("dynamodb", "PutItem") >= 1  # the event, with its envelope
        status, _, _ = _request(stack.url("/webhooks/workflow/dialer") + "?token=wrong", body=body)
        assert 400 <= status < 500


# ============================================================================================ toy template

TOY_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Mem: {Type: Number, Default: 256}
Globals:
  Function:
    Runtime: python3.13
    CodeUri: code/
    Handler: app.echo
    MemorySize: !Ref Mem
    Timeout: 5
    Layers: [!Ref Lib]
    Environment:
      Variables:
        TABLE: !Ref Table
        QUEUE_ARN: !GetAtt Jobs.Arn
        GREETING: !Sub "hello-${AWS::Region}"
Resources:
  Lib:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: lib/}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
  Jobs:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: 60}
  Api:
    Type: AWS::Serverless::HttpApi
  Exact:
    Type: AWS::Serverless::Function
    Properties:
      Events: {Post: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /webhooks/workflow/dialer}}}
  Product:
    Type: AWS::Serverless::Function
    Properties:
      Events: {Post: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: post, Path: "/webhooks/{product}/call"}}}
  CatchAll:
    Type: AWS::Serverless::Function
    Properties:
      Events: {Post: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: "/webhooks/{proxy+}"}}}
  Anything:
    Type: AWS::Serverless::Function
    Properties:
      Events: {Any: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: ANY, Path: "/things/{id}"}}}
  Boom:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.boom
      Events: {Post: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /boom}}}
  Plain:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.plain
      Events: {Post: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /plain}}}
  Nap:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.nap
      Timeout: 1
      Events: {Post: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /nap}}}
  Meet:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.meet
      Timeout: 60
      Events: {Post: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /meet}}}
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.consume
      Events:
        Jobs:
          Type: SQS
          Properties: {Queue: !GetAtt Jobs.Arn, BatchSize: 5, FunctionResponseTypes: [ReportBatchItemFailures]}
  Nightly:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.nightly
      Events: {Daily: {Type: Schedule, Properties: {Schedule: rate(1 day)}}}
"""

TOY_APP = """
import json
import os
import threading
import time

import toylib

CALLS = []
MEETING = threading.Barrier(4)


def echo(event, context):
    CALLS.append(event["rawPath"])
    details = {
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "remaining": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
    }
    env = {k: os.environ.get(k) for k in ("TABLE", "QUEUE_ARN", "GREETING", "AWS_ENDPOINT_URL")}
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-fn": context.function_name},
        "cookies": ["session=1; Path=/"],
        "body": json.dumps({"event": event, "context": details, "env": env, "lib": toylib.NAME}),
    }


def boom(event, context):
    raise RuntimeError("boom")


def plain(event, context):
    return {"hello": "world"}


def nap(event, context):
    time.sleep(float(event.get("queryStringParameters", {}).get("seconds", "0")))
    return {"statusCode": 200, "body": "rested"}


def meet(event, context):
    MEETING.wait(timeout=30)  # BrokenBarrierError (a 500) unless four invocations run at the same time
    return {"statusCode": 200, "body": "met"}


def consume(event, context):
    failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]
    return {"batchItemFailures": failures}


def nightly(event, context):
    return event
"""


@pytest.fixture(scope="class")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    root = tmp_path_factory.mktemp("toy")
    (root / "template.yaml").write_text(TOY_TEMPLATE)
    (root / "code").mkdir()
    (root / "code" / "app.py").write_text(textwrap.dedent(TOY_APP))
    (root / "lib").mkdir()
    (root / "lib" / "toylib.py").write_text('NAME = "from-layer"\n')
    with LocalStack(template_path=root / "template.yaml", stack_name="toy") as running:
        yield running


def _echo(toy: LocalStack, path: str, **kwargs: Any) -> dict[str, Any]:
    status, _, body = _request(toy.url(path), **kwargs)
    assert status == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


class TestGateway:
    def test_route_precedence(self, toy: LocalStack) -> None:
        exact = _echo(toy, "/webhooks/workflow/dialer", body=b"{}")
        assert exact["event"]["routeKey"] == "POST /webhooks/workflow/dialer"
        assert exact["context"]["function_name"] == toy.resources["Exact"]["Ref"]
        assert "pathParameters" not in exact["event"]
        product = _echo(toy, "/webhooks/collection/call", body=b"{}")
        assert product["event"]["routeKey"] == "POST /webhooks/{product}/call"
        assert product["event"]["pathParameters"] == {"product": "collection"}
        greedy = _echo(toy, "/webhooks/a/b", body=b"{}")
        assert greedy["event"]["routeKey"] == "POST /webhooks/{proxy+}"
        assert greedy["event"]["pathParameters"] == {"proxy": "a/b"}
        assert greedy["context"]["function_name"] == toy.resources["CatchAll"]["Ref"]
        anything = _echo(toy, "/things/42", method="DELETE")
        assert anything["event"]["routeKey"] == "ANY /things/{id}"
        assert anything["event"]["requestContext"]["http"]["method"] == "DELETE"
        for method, path in (("GET", "/webhooks/workflow/dialer"), ("POST", "/webhooks"), ("POST", "/nowhere")):
            status, _, body = _request(toy.url(path), method=method, body=b"{}")
            assert (status, json.loads(body)) == (404, {"message": "Not Found"})

    def test_event_shape(self, toy: LocalStack) -> None:
        status, headers, body = _request(
            toy.url("/webhooks/workflow/dialer") + "?token=t0k&x=1&x=2",
            body=b'{"a": 1}',
            headers=[
                ("Content-Type", "application/json"),
                ("X-Multi", "one"),
                ("X-Multi", "two"),
                ("Cookie", "c1=v1; c2=v2"),
                ("User-Agent", "tester/1.0"),
            ],
        )
        assert status == 200
        result = json.loads(body)
        event = result["event"]
        assert event["version"] == "2.0"
        assert event["rawPath"] == "/webhooks/workflow/dialer"
        assert event["rawQueryString"] == "token=t0k&x=1&x=2"
        assert event["queryStringParameters"] == {"token": "t0k", "x": "1,2"}
        assert event["cookies"] == ["c1=v1", "c2=v2"]
        assert event["headers"]["x-multi"] == "one,two"
        assert event["headers"]["user-agent"] == "tester/1.0"
        assert event["body"] == '{"a": 1}' and event["isBase64Encoded"] is False
        context = event["requestContext"]
        assert context["accountId"] == "123456789012"
        assert context["apiId"] == toy.placeholders["Api"]["Ref"]
        assert context["domainName"] == f"{context['apiId']}.execute-api.us-east-1.amazonaws.com"
        assert context["http"] == {
            "method": "POST",
            "path": "/webhooks/workflow/dialer",
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "tester/1.0",
        }
        assert context["stage"] == "$default"
        assert context["routeKey"] == event["routeKey"]
        assert isinstance(context["timeEpoch"], int) and abs(context["timeEpoch"] / 1000 - time.time()) < 60
        assert context["requestId"] == headers["apigw-requestid"]
        assert headers["x-fn"] == toy.resources["Exact"]["Ref"]
        assert headers.get_all("set-cookie") == ["session=1; Path=/"]
        binary = _echo(
            toy, "/webhooks/workflow/dialer", body=b"\x00\xff", headers=[("Content-Type", "application/octet-stream")]
        )
        assert binary["event"]["isBase64Encoded"] is True
        assert base64.b64decode(binary["event"]["body"]) == b"\x00\xff"

    def test_context_environment_and_layer(self, toy: LocalStack) -> None:
        result = _echo(toy, "/webhooks/workflow/dialer", body=b"{}")
        assert result["context"]["memory"] == "256"
        assert result["context"]["arn"] == toy.resources["Exact"]["Arn"]
        name = toy.resources["Exact"]["Ref"]
        assert result["context"]["arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        assert 0 < result["context"]["remaining"] <= 5000
        assert result["env"] == {
            "TABLE": toy.resources["Table"]["Ref"],
            "QUEUE_ARN": toy.resources["Jobs"]["Arn"],
            "GREETING": "hello-us-east-1",
            "AWS_ENDPOINT_URL": toy.aws_endpoint_url,
        }
        assert result["lib"] == "from-layer"
        assert toy.functions is not None
        assert toy.functions.handler("Exact") is toy.functions.handler("Product")  # one module per CodeUri+Handler

    def test_errors_and_inferred_responses(self, toy: LocalStack, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.ERROR, logger="tools.local_aws.gateway"):
            status, headers, body = _request(toy.url("/boom"), body=b"{}")
        assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
        assert "RuntimeError: boom" in caplog.text
        status, headers, body = _request(toy.url("/plain"), body=b"{}")
        assert (status, headers["content-type"], json.loads(body)) == (200, "application/json", {"hello": "world"})
        status, _, body = _request(toy.url("/nap") + "?seconds=1.3", body=b"{}")  # Timeout: 1
        assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})

    def test_body_over_10_mb_is_refused_without_invoking(self, toy: LocalStack) -> None:
        assert toy.functions is not None
        calls = toy.functions.handler("Exact").__globals__["CALLS"]
        before = len(calls)
        status, _, _ = _request(toy.url("/webhooks/workflow/dialer"), body=b"x" * (10 * 1024 * 1024 + 1))
        assert status == 413
        assert len(calls) == before
        assert _request(toy.url("/webhooks/workflow/dialer"), body=b"x" * (1024 * 1024))[0] == 200

    def test_requests_run_concurrently(self, toy: LocalStack) -> None:
        # Four requests meet inside the function (a barrier of four): served one at a time, they never could.
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda: results.append(_request(toy.url("/meet"), body=b"")[0])) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [200] * 4

    def test_non_http_functions(self, toy: LocalStack) -> None:
        assert toy.invoke("Plain", {}) == {"hello": "world"}
        assert {(s.function_id, s.type) for s in toy.event_sources} == {("Consumer", "SQS"), ("Nightly", "Schedule")}
        assert all(route[2] not in ("Consumer", "Nightly") for route in toy.routes)
        sqs = toy.boto3_client("sqs")
        queue = toy.resources["Jobs"]["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody="good")
        bad_id = sqs.send_message(QueueUrl=queue, MessageBody="bad")["MessageId"]
        outcome = toy.deliver_sqs("Consumer")
        assert outcome["received"] == 2 and outcome["failed"] == [bad_id] and outcome["error"] is None
        again = toy.deliver_sqs("Consumer")  # only the failed one came back
        assert again["received"] == 1 and again["failed"] == [bad_id]
        event = toy.run_schedule("Nightly")
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"

    def test_apigw_events_are_generated_deterministically(self, tmp_path: Path) -> None:
        events = tmp_path / "events"
        (events / "workflow" / "dialer").mkdir(parents=True)
        (events / "workflow" / "dialer" / "contact.json").write_text('{"type": "ContactStatus"}\n')
        (events / "workflow" / "dialer" / "notes.md").write_text("not a sample")
        (events / "something" / "new").mkdir(parents=True)
        (events / "something" / "new" / "cb.json").write_text("{}")
        (events / "apigw" / "old").mkdir(parents=True)
        (events / "apigw" / "old" / "keep.json").write_text("{}")
        (events / "top.json").write_text("{}")
        written = generate(events, ROOT / "template.yaml")
        assert sorted(p.relative_to(events).as_posix() for p in written) == [
            "apigw/something/new/cb.json",
            "apigw/workflow/dialer/contact.json",
        ]
        first = {p: p.read_bytes() for p in written}
        mtimes = {p: p.stat().st_mtime_ns for p in written}
        time.sleep(0.01)
        assert generate(events, ROOT / "template.yaml") == written
        assert {p: p.read_bytes() for p in written} == first
        assert {p: p.stat().st_mtime_ns for p in written} == mtimes
        event = json.loads((events / "apigw/workflow/dialer/contact.json").read_text())
        assert event["routeKey"] == "POST /webhooks/workflow/dialer"
        assert event["headers"]["x-webhook-token"] == "local-dev-token"
        assert event["body"] == '{"type": "ContactStatus"}\n' and event["isBase64Encoded"] is False
        unknown = json.loads((events / "apigw/something/new/cb.json").read_text())
        assert unknown["routeKey"] == "POST /webhooks/{proxy+}"
        assert unknown["pathParameters"] == {"proxy": "something/new"}
        assert (events / "apigw" / "old" / "keep.json").exists()  # only --prune removes stale files
        generate(events, ROOT / "template.yaml", prune=True)
        assert not (events / "apigw" / "old" / "keep.json").exists()


def test_conflicting_environment_variables_are_refused(tmp_path: Path) -> None:
    template = cfn.loads_template(
        """
Resources:
  A: {Type: AWS::Serverless::Function, Properties: {CodeUri: ., Handler: a.h, Environment: {Variables: {X: "1"}}}}
  B: {Type: AWS::Serverless::Function, Properties: {CodeUri: ., Handler: a.h, Environment: {Variables: {X: "2"}}}}
"""
    )
    functions = Functions(
        template,
        tmp_path,
        {name: {"FunctionName": name, **spec["Properties"]} for name, spec in template["Resources"].items()},
    )
    with pytest.raises(cfn.TemplateError, match="X differs between A and B"):
        functions.environment()


def test_serve_prints_urls_and_answers(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(TOY_TEMPLATE)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text(textwrap.dedent(TOY_APP))
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "toylib.py").write_text('NAME = "from-layer"\n')
    # Port 0: the process binds free ports itself and prints them (a port picked here and bound there
    # could be taken by another process in between). Not the defaults 3000 / 5000: the variables were read.
    env = {**os.environ, "PORT": "0", "MOTO_PORT": "0", "WEBHOOK_TOKEN": "serve-token"}
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.demo.serve", "--template", str(tmp_path / "template.yaml")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        output = "".join(lines)
        gateway = re.search(r"^Gateway +http://127\.0\.0\.1:(\d+) ", output, re.MULTILINE)
        moto = re.search(r"^moto +http://127\.0\.0\.1:(\d+) ", output, re.MULTILINE)
        assert gateway and moto, output
        port, moto_port = int(gateway[1]), int(moto[1])
        assert port not in (0, 3000, moto_port) and moto_port not in (0, 5000)
        assert f"http://127.0.0.1:{port}/webhooks/workflow/dialer?token=serve-token" in output
        status, _, body = _request(f"http://127.0.0.1:{port}/webhooks/workflow/dialer?token=serve-token", body=b"{}")
        assert status == 200 and json.loads(body)["event"]["queryStringParameters"] == {"token": "serve-token"}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0
