"""template.yaml and the code agree: every route has a model, every model a route, every URL an output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airudder_ingest.models import ROUTES
from tools.cfn import load_template, merge_globals

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = merge_globals(load_template(ROOT / "template.yaml"))
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def http_routes() -> dict[str, str]:
    """path -> logical id of the function that serves it."""
    found = {}
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                assert event["Properties"]["Method"] == "POST", logical_id
                assert event["Properties"]["Path"] not in found, f"two functions serve {event['Properties']['Path']}"
                found[event["Properties"]["Path"]] = logical_id
    return found


def test_every_route_of_the_template_has_a_model_and_every_model_a_route() -> None:
    assert set(http_routes()) == set(ROUTES)


def test_each_webhook_type_is_its_own_function() -> None:
    routes = http_routes()
    assert len(set(routes.values())) == len(routes)


def test_webhook_functions_run_the_shared_handler_with_the_ingest_role() -> None:
    for logical_id in http_routes().values():
        props = RESOURCES[logical_id]["Properties"]
        assert (props["CodeUri"], props["Handler"]) == ("functions/webhook/", "app.lambda_handler"), logical_id
        assert props["Role"] == {"Fn::GetAtt": ["WebhookFunctionRole", "Arn"]}, logical_id
        assert props["Runtime"] == "python3.13" and props["Architectures"] == ["arm64"]


def test_every_route_is_listed_in_the_outputs() -> None:
    outputs = " ".join(str(o["Value"]) for o in TEMPLATE["Outputs"].values())
    for path in http_routes():
        prefix = path.split("{", 1)[0]
        assert prefix in outputs, f"no output gives the URL of {path}"


def test_the_ingest_role_may_only_write_what_the_pipeline_writes() -> None:
    statements = RESOURCES["WebhookFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = sorted(a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    for statement in statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert statement["Effect"] == "Allow" and "*" not in resources, statement  # never every resource
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "s3:PutObject", "sqs:SendMessage"} <= set(actions)
    assert not any(a.endswith(("Delete", "DeleteItem", "DeleteObject", "Scan")) for a in actions)


def test_storage_is_encrypted_private_and_recoverable() -> None:
    table = RESOURCES["EventsTable"]["Properties"]
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    bucket = RESOURCES["ArchiveBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] == "AWS::SQS::Queue":
            assert resource["Properties"].get("SqsManagedSseEnabled") or resource["Properties"].get("KmsMasterKeyId"), (
                logical_id
            )
