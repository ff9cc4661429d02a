"""template.yaml and the code agree: every route has a model, every model a route, every URL an output."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from airudder_ingest.models import ROUTES
from tools.local_aws.template import load_template, merge_globals

ROOT = Path(__file__).resolve().parents[3]
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


# ---------------------------------------------------------------- floods: route throttles, 401/429 alarm

# Routes that carry one or more deliveries per call dialled: the bulk of AIRUDDER's traffic.
CALL_ROUTES = {
    "/webhooks/workflow/dialer",
    "/webhooks/workflow/call",
    "/webhooks/workflow/infocheck-call",
    "/webhooks/{product}/call",
    "/webhooks/leadgen/dialer",
    "/webhooks/leadgen/call",
}
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
# The design peak README states (2,000 deliveries/s): all of it can arrive on one call route.
DESIGN_PEAK_PER_SECOND = 2000


def http_events() -> dict[str, dict[str, Any]]:
    """path -> the Properties of the HttpApi event that declares it."""
    return {
        event["Properties"]["Path"]: event["Properties"]
        for resource in RESOURCES.values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in (resource["Properties"].get("Events") or {}).values()
        if event["Type"] == "HttpApi"
    }


def test_every_webhook_route_has_its_own_throttle_from_the_parameters_of_its_kind() -> None:
    events = http_events()
    assert set(events) >= CALL_ROUTES
    for path, props in events.items():
        tier = "CallRoutes" if path in CALL_ROUTES else "OtherRoutes"
        assert props["ApiId"] == {"Ref": "WebhookApi"}, path
        assert props.get("RouteSettings") == {
            "ThrottlingRateLimit": {"Ref": f"{tier}ThrottlingRateLimit"},
            "ThrottlingBurstLimit": {"Ref": f"{tier}ThrottlingBurstLimit"},
        }, path
    # A route added without settings falls back to the smaller bucket, never to an unbounded one.
    assert RESOURCES["WebhookApi"]["Properties"]["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "OtherRoutesThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "OtherRoutesThrottlingBurstLimit"},
    }


def test_throttle_defaults_leave_room_for_airudders_traffic() -> None:
    for tier in ("CallRoutes", "OtherRoutes"):
        rate = PARAMETERS[f"{tier}ThrottlingRateLimit"]
        burst = PARAMETERS[f"{tier}ThrottlingBurstLimit"]
        assert rate["Type"] == burst["Type"] == "Number"
        assert burst["Default"] >= rate["Default"] >= 1, tier
    assert PARAMETERS["CallRoutesThrottlingRateLimit"]["Default"] >= DESIGN_PEAK_PER_SECOND
    # API Gateway's default account burst is 5,000 per Region: a route's bucket above it is never reached.
    assert PARAMETERS["CallRoutesThrottlingBurstLimit"]["Default"] <= 5000
    other, call = (PARAMETERS[f"{tier}ThrottlingRateLimit"]["Default"] for tier in ("OtherRoutes", "CallRoutes"))
    assert other < call


def access_log_format() -> tuple[dict[str, str], list[str]]:
    """The access log line with each $context variable replaced by its name, and the variables used."""
    template_format = RESOURCES["WebhookApi"]["Properties"]["AccessLogSettings"]["Format"]
    variables = re.findall(r"\$context\.([A-Za-z0-9_.]+)", template_format)
    line = json.loads(re.sub(r"\$context\.([A-Za-z0-9_.]+)", r"\1", template_format))
    return line, variables


def test_access_log_keeps_what_the_alarm_needs_and_never_the_token() -> None:
    line, variables = access_log_format()
    assert line["status"] == "status" and line["apiId"] == "apiId" and line["routeKey"] == "routeKey"
    # Only these: the token rides in the query string or a header, phone numbers in the body; none of
    # these variables holds any of them. Adding one (path, a header, the authorizer context) needs a look.
    assert set(variables) <= {
        "requestId",
        "apiId",
        "identity.sourceIp",
        "routeKey",
        "status",
        "responseLength",
        "integrationLatency",
        "requestTime",
    }


def metric_filters() -> dict[str, dict[str, Any]]:
    """status it counts -> its metric transformation, for the filters on the API access log."""
    found = {}
    for resource in RESOURCES.values():
        if resource["Type"] != "AWS::Logs::MetricFilter":
            continue
        props = resource["Properties"]
        assert props["LogGroupName"] == {"Ref": "ApiAccessLogGroup"}
        match = re.fullmatch(r'\{ \$\.(\w+) = "(\d{3})" \}', props["FilterPattern"])
        assert match, props["FilterPattern"]
        field, status = match.groups()
        assert field in access_log_format()[0], f"the access log has no {field}"
        (transformation,) = props["MetricTransformations"]
        for dimension in transformation.get("Dimensions", []):
            assert dimension["Value"].removeprefix("$.") in access_log_format()[0], dimension
        found[status] = transformation
    return found


def test_401s_and_429s_are_counted_and_alarmed_per_minute() -> None:
    filters = metric_filters()
    assert set(filters) == {"401", "429"}
    alarm = RESOURCES["RejectedRequestsAlarm"]["Properties"]
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    counted = set()
    for stat in stats.values():
        metric = stat["Metric"]
        assert stat["Period"] == 60 and stat["Stat"] == "Sum"
        assert metric["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "WebhookApi"}}]
        for status, transformation in filters.items():
            if (transformation["MetricNamespace"], transformation["MetricName"]) == (
                metric["Namespace"],
                metric["MetricName"],
            ):
                assert transformation["Dimensions"] == [{"Key": "ApiId", "Value": "$.apiId"}]
                counted.add(status)
    assert counted == {"401", "429"}, "the alarm must read both metric filters' metrics"
    (expression,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert all(f"FILL({metric_id}, 0)" in expression["Expression"] for metric_id in stats)
    assert alarm["Threshold"] == {"Ref": "RejectedRequestsAlarmThreshold"}
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
