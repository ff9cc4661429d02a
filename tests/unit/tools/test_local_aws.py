"""tools.local_aws: the template reader (short-form tags, SAM Globals, parameter defaults), what the local
stack does to the expanded template before moto's CloudFormation reads it, and the pure parts of the
gateway. (Intrinsic functions are moto's CloudFormation's: tests/integration/test_local_stack.py.)"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from tools.local_aws import template as cfn
from tools.local_aws.gateway import Route, build_event, http_response, load_routes, match_route
from tools.local_aws.stack import _bind, _drop_dependents, _lifecycle_rule

ROOT = Path(__file__).resolve().parents[3]

TAGS = """
Parameters:
  Size: {Type: Number, Default: 256}
  Names: {Type: CommaDelimitedList, Default: "a,b,c"}
  Email: {Type: String, Default: ""}
  Env: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Code: {Type: String, Default: "62", AllowedPattern: "^[0-9]{0,4}$"}
Mappings:
  Sizes:
    dev: {memory: 128}
Conditions:
  HasEmail: !Not [!Equals [!Ref Email, ""]]
  IsDev: !Equals [!Ref Env, dev]
  Both: !And [!Condition IsDev, !Not [!Condition HasEmail]]
  Either: !Or [!Condition HasEmail, !Equals [1, "1"]]
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      Ref: !Ref Size
      Att: !GetAtt Table.Arn
      Nested: !GetAtt Table.Some.Deep
      List: !GetAtt [Table, StreamArn]
      Sub: !Sub "${AWS::StackName}-${Table.Arn}-${!Literal}"
      SubVars: !Sub ["${A}/${Size}", {A: !Ref Table}]
      Join: !Join [",", [a, !Ref Size]]
      Select: !Select [1, !Ref Names]
      Split: !Split ["|", "x|y"]
      If: !If [HasEmail, with-email, !Ref AWS::NoValue]
      Map: !FindInMap [Sizes, dev, memory]
      B64: !Base64 hello
      Import: !ImportValue shared-vpc
      Cond: !Condition IsDev
      Azs: !GetAZs ""
      Cidr: !Cidr ["10.0.0.0/16", 2, 8]
      Version: 2012-10-17
"""


@pytest.fixture(scope="module")
def tagged() -> dict:
    return cfn.loads_template(TAGS)


def test_short_form_tags_become_long_form(tagged: dict) -> None:
    props = tagged["Resources"]["Table"]["Properties"]
    assert props["Ref"] == {"Ref": "Size"}
    assert props["Att"] == {"Fn::GetAtt": ["Table", "Arn"]}
    assert props["Nested"] == {"Fn::GetAtt": ["Table", "Some.Deep"]}
    assert props["List"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert props["Sub"] == {"Fn::Sub": "${AWS::StackName}-${Table.Arn}-${!Literal}"}
    assert props["SubVars"] == {"Fn::Sub": ["${A}/${Size}", {"A": {"Ref": "Table"}}]}
    assert props["Join"] == {"Fn::Join": [",", ["a", {"Ref": "Size"}]]}
    assert props["If"] == {"Fn::If": ["HasEmail", "with-email", {"Ref": "AWS::NoValue"}]}
    assert props["Map"] == {"Fn::FindInMap": ["Sizes", "dev", "memory"]}
    assert props["B64"] == {"Fn::Base64": "hello"}
    assert props["Import"] == {"Fn::ImportValue": "shared-vpc"}
    assert props["Cond"] == {"Condition": "IsDev"}
    assert props["Version"] == "2012-10-17"  # not a datetime.date
    assert tagged["Conditions"]["HasEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Email"}, ""]}]}


def test_merge_globals_follows_sam() -> None:
    template: dict[str, Any] = {
        "Globals": {
            "Function": {
                "Runtime": "python3.13",
                "Timeout": 10,
                "Layers": [{"Ref": "L1"}],
                "Environment": {"Variables": {"A": "1", "B": {"Ref": "T"}}},
                "Tags": {"team": "x"},
                "MemorySize": {"Ref": "Mem"},
            }
        },
        "Resources": {
            "F": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Timeout": 30,
                    "Layers": [{"Ref": "L2"}],
                    "Environment": {"Variables": {"B": "local", "C": "3"}},
                    "MemorySize": {"Fn::If": ["C", 1, 2]},
                },
            },
            "G": {"Type": "AWS::Serverless::Function"},
            "T": {"Type": "AWS::DynamoDB::Table", "Properties": {"Timeout": 1}},
        },
    }
    merged = cfn.merge_globals(template)
    f = merged["Resources"]["F"]["Properties"]
    assert f["Runtime"] == "python3.13"
    assert f["Timeout"] == 30
    assert f["Layers"] == [{"Ref": "L1"}, {"Ref": "L2"}]  # globals first
    assert f["Environment"]["Variables"] == {"A": "1", "B": "local", "C": "3"}
    assert f["MemorySize"] == {"Fn::If": ["C", 1, 2]}  # intrinsics are primitives: local wins
    assert f["Tags"] == {"team": "x"}
    assert merged["Resources"]["G"]["Properties"]["Timeout"] == 10
    assert merged["Resources"]["T"]["Properties"] == {"Timeout": 1}
    assert "Runtime" not in template["Resources"]["F"]["Properties"]  # input untouched


def test_real_template_functions() -> None:
    template = cfn.merge_globals(cfn.load_template(ROOT / "template.yaml"))
    functions = cfn.resources_of_type(template, "AWS::Serverless::Function")
    assert functions
    for props in (f["Properties"] for f in functions.values()):
        assert props["Handler"] and props["CodeUri"]
        assert "EVENTS_TABLE" in props["Environment"]["Variables"]


def test_template_defaults_fill_parameters_only(tagged: dict) -> None:
    defaults = cfn.TemplateDefaults(tagged, parameters={"Env": "prod"})
    value = {"a": {"Ref": "Size"}, "b": [{"Ref": "Env"}], "c": {"Ref": "Table"}, "d": {"Fn::Sub": "${Size}"}}
    assert defaults.resolve(value) == {"a": 256, "b": ["prod"], "c": {"Ref": "Table"}, "d": {"Fn::Sub": "${Size}"}}
    assert defaults.resource_enabled("Table")
    with pytest.raises(cfn.TemplateError, match="unknown parameters: Nope"):
        cfn.TemplateDefaults(tagged, parameters={"Nope": "1"})


# ---------------------------------------------------------------------------------------------- stack


def test_bind_replaces_refs_and_sub_variables_of_one_resource() -> None:
    template: dict[str, Any] = {
        "Resources": {
            "F": {
                "Properties": {
                    "Env": {"S": {"Ref": "Secret"}, "T": {"Ref": "Table"}},
                    "Url": {"Fn::Sub": "https://${Api}.example/${Table}"},
                    "Vars": {"Fn::Sub": ["${Api}/${X}", {"X": {"Ref": "Api"}}]},
                }
            }
        },
        "Outputs": {"Base": {"Value": {"Fn::Sub": "https://${Api}.example"}}},
    }
    _bind(template, "Secret", "arn:secret")
    _bind(template, "Api", "abc123")
    props = template["Resources"]["F"]["Properties"]
    assert props["Env"] == {"S": "arn:secret", "T": {"Ref": "Table"}}
    assert props["Url"] == {"Fn::Sub": "https://abc123.example/${Table}"}
    assert props["Vars"] == {"Fn::Sub": ["abc123/${X}", {"X": "abc123"}]}
    assert template["Outputs"]["Base"]["Value"] == {"Fn::Sub": "https://abc123.example"}


def test_resources_that_refer_to_one_left_out_go_too() -> None:
    template: dict[str, Any] = {
        "Parameters": {"Rate": {}},
        "Resources": {
            "Function": {"Properties": {"Rate": {"Ref": "Rate"}, "Region": {"Ref": "AWS::Region"}}},
            "Permission": {"Properties": {"SourceArn": {"Fn::GetAtt": ["Schedule", "Arn"]}}},
            "Alarm": {"Properties": {"Dimension": {"Ref": "Permission"}}},
        },
    }
    notes: list[str] = []
    _drop_dependents(template, notes)
    assert list(template["Resources"]) == ["Function"]
    assert notes == ["Permission: left out with Schedule", "Alarm: left out with Permission"]


def test_lifecycle_rules_take_the_s3_api_shape() -> None:
    rules: list[dict[str, Any]] = [
        {
            "Id": "tier",
            "Status": "Enabled",
            "Prefix": "raw/",
            "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": "30"}],
        },
        {"Id": "old", "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 7}},
        {"Id": "abort", "Status": "Enabled", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
        {"Id": "results", "Status": "Enabled", "Prefix": "results/", "ExpirationInDays": "45"},
    ]
    assert [_lifecycle_rule(rule) for rule in rules] == [
        {
            "ID": "tier",
            "Status": "Enabled",
            "Filter": {"Prefix": "raw/"},
            "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
        },
        {
            "ID": "old",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
        },
        {
            "ID": "abort",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
        },
        {"ID": "results", "Status": "Enabled", "Filter": {"Prefix": "results/"}, "Expiration": {"Days": 45}},
    ]


# ---------------------------------------------------------------------------------------------- gateway


def _routes(*specs: tuple[str, str]) -> list[Route]:
    return [Route(method, path, f"F{i}") for i, (method, path) in enumerate(specs)]


def test_route_precedence() -> None:
    routes = _routes(
        ("POST", "/webhooks/{proxy+}"),
        ("POST", "/webhooks/{product}/call"),
        ("POST", "/webhooks/workflow/dialer"),
        ("ANY", "/webhooks/workflow/{kind}"),
        ("GET", "/things/{id}"),
    )
    assert match_route(routes, "POST", "/webhooks/workflow/dialer") == (routes[2], {})
    assert match_route(routes, "POST", "/webhooks/collection/call") == (routes[1], {"product": "collection"})
    assert match_route(routes, "POST", "/webhooks/workflow/call") == (routes[3], {"kind": "call"})
    assert match_route(routes, "POST", "/webhooks/a/b/c") == (routes[0], {"proxy": "a/b/c"})
    assert match_route(routes, "POST", "/webhooks/a%20b") == (routes[0], {"proxy": "a b"})
    assert match_route(routes, "GET", "/webhooks/workflow/x") == (routes[3], {"kind": "x"})
    assert match_route(routes, "GET", "/webhooks/a/b") is None  # path matches, method does not
    assert match_route(routes, "POST", "/webhooks") is None  # {proxy+} needs a segment
    assert match_route(routes, "POST", "/webhooks/") is None
    assert match_route(routes, "GET", "/things/1/2") is None
    default = [*routes, Route("ANY", "$default", "D")]
    assert match_route(default, "DELETE", "/anything") == (default[-1], {})


def test_routes_come_from_the_template() -> None:
    template = cfn.merge_globals(cfn.load_template(ROOT / "template.yaml"))
    routes = load_routes(template)
    declared = set()
    for logical_id, resource in cfn.resources_of_type(template, "AWS::Serverless::Function").items():
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                declared.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"], logical_id))
    assert {(r.method, r.path, r.function_id) for r in routes} == declared
    assert all(r.api_id == "WebhookApi" for r in routes)


def test_build_event_matches_the_v2_format() -> None:
    route = Route("POST", "/webhooks/{product}/call", "F")
    event = build_event(
        "post",
        "/webhooks/collection/call",
        "token=abc&x=1&x=2&empty=",
        [
            ("Content-Type", "application/json"),
            ("X-Repeat", "a"),
            ("x-repeat", "b"),
            ("Cookie", "c1=1; c2=2"),
            ("User-Agent", "ua/1"),
        ],
        b'{"k":"v"}',
        route,
        source_ip="198.51.100.7",
        request_id="req-1",
        time_epoch_ms=1_583_348_638_390,
        api_id="abc123",
    )
    assert set(event) == {
        "version", "routeKey", "rawPath", "rawQueryString", "cookies", "headers", "queryStringParameters",
        "requestContext", "body", "pathParameters", "isBase64Encoded",
    }  # fmt: skip
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /webhooks/{product}/call"
    assert event["rawPath"] == "/webhooks/collection/call"
    assert event["rawQueryString"] == "token=abc&x=1&x=2&empty="
    assert event["cookies"] == ["c1=1", "c2=2"]
    assert event["headers"]["x-repeat"] == "a,b"
    assert event["headers"]["content-type"] == "application/json"
    assert "cookie" not in event["headers"]
    assert all(name == name.lower() for name in event["headers"])
    assert event["queryStringParameters"] == {"token": "abc", "x": "1,2", "empty": ""}
    assert event["pathParameters"] == {"product": "collection"}
    assert event["body"] == '{"k":"v"}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert set(context) == {
        "accountId", "apiId", "domainName", "domainPrefix", "http", "requestId", "routeKey", "stage", "time",
        "timeEpoch",
    }  # fmt: skip
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == "abc123" and context["domainPrefix"] == "abc123"
    assert context["domainName"] == "abc123.execute-api.us-east-1.amazonaws.com"
    assert context["http"] == {
        "method": "POST",
        "path": "/webhooks/collection/call",
        "protocol": "HTTP/1.1",
        "sourceIp": "198.51.100.7",
        "userAgent": "ua/1",
    }
    assert context["requestId"] == "req-1"
    assert context["routeKey"] == event["routeKey"]
    assert context["stage"] == "$default"
    assert context["time"] == "04/Mar/2020:19:03:58 +0000"
    assert context["timeEpoch"] == 1_583_348_638_390


def test_build_event_bodies_and_optional_fields() -> None:
    bare = build_event("POST", "/x", None, {}, None, "/x")
    assert "body" not in bare and bare["isBase64Encoded"] is False
    assert "queryStringParameters" not in bare and "pathParameters" not in bare and "cookies" not in bare
    assert bare["rawQueryString"] == ""
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", bare["requestContext"]["time"])
    binary = build_event("POST", "/x", None, {"content-type": "application/octet-stream"}, b"\xff\x00", "/x")
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\xff\x00"
    # API Gateway base64-encodes anything not text (form posts and a missing content type included).
    form = build_event("POST", "/x", None, {"content-type": "application/x-www-form-urlencoded"}, "a=1", "/x")
    assert form["isBase64Encoded"] is True and base64.b64decode(form["body"]) == b"a=1"
    text = build_event("POST", "/x", None, {"content-type": "text/plain; charset=utf-8"}, "héllo", "/x")
    assert text["body"] == "héllo" and text["isBase64Encoded"] is False
    assert build_event("GET", "/any", None, None, None, "$default")["routeKey"] == "$default"
    with pytest.raises(ValueError, match="does not match"):
        build_event("POST", "/y", None, None, None, "/x")


def test_http_response_follows_api_gateway() -> None:
    assert http_response({"ok": True}) == (200, {"content-type": "application/json"}, [], b'{"ok": true}')
    assert http_response("hi") == (200, {"content-type": "application/json"}, [], b"hi")
    status, headers, cookies, body = http_response(
        {"statusCode": 201, "headers": {"X-A": 1}, "cookies": ["a=1"], "body": "eA==", "isBase64Encoded": True}
    )
    assert (status, headers, cookies, body) == (201, {"x-a": "1"}, ["a=1"], b"x")
    assert http_response({"statusCode": 204})[3] == b""
    for bad in ({"statusCode": "abc"}, {"statusCode": 200, "body": {"x": 1}}, {"statusCode": 200, "x": object()}):
        with pytest.raises(ValueError):
            http_response(bad)
