"""tools.local_aws.gateway's route throttles: the token bucket, and the settings read from the template."""

from __future__ import annotations

from pathlib import Path

from tools.local_aws import template as cfn
from tools.local_aws.gateway import Throttle, TokenBucket, load_routes

ROOT = Path(__file__).resolve().parents[3]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def takes(bucket: TokenBucket, n: int) -> list[bool]:
    return [bucket.take() for _ in range(n)]


def test_the_bucket_starts_full_refills_at_the_rate_and_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(Throttle(rate=4, burst=3), clock)
    assert takes(bucket, 4) == [True, True, True, False]  # the burst at once, then refused
    clock.now += 0.2  # 0.8 token: not yet one
    assert takes(bucket, 1) == [False]
    clock.now += 0.05  # 0.8 + 0.2 = 1 token (the refused take spent nothing)
    assert takes(bucket, 2) == [True, False]
    clock.now += 0.5  # 2 tokens
    assert takes(bucket, 3) == [True, True, False]
    clock.now += 3600  # an hour idle fills the bucket to the burst, no more
    assert takes(bucket, 4) == [True, True, True, False]


def test_a_zero_rate_never_refills_and_a_zero_burst_refuses_everything() -> None:
    clock = Clock()
    bucket = TokenBucket(Throttle(rate=0, burst=2), clock)
    assert takes(bucket, 3) == [True, True, False]
    clock.now += 3600
    assert takes(bucket, 1) == [False]
    assert takes(TokenBucket(Throttle(rate=1000, burst=0), clock), 1) == [False]


TEMPLATE = """
Parameters:
  Rate: {Type: Number, Default: 7}
Globals:
  HttpApi:
    DefaultRouteSettings: {ThrottlingRateLimit: 1, ThrottlingBurstLimit: 2}
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      DefaultRouteSettings: {ThrottlingRateLimit: !Ref Rate, ThrottlingBurstLimit: 20}
      RouteSettings:
        "POST /keyed": {ThrottlingBurstLimit: 30}
  Own:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Post:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: POST
            Path: /own
            RouteSettings: {ThrottlingRateLimit: 5, ThrottlingBurstLimit: !Ref Rate}
  Keyed:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Post: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /keyed}}
  Plain:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Post: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /plain}}
  Implicit:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Post: {Type: HttpApi, Properties: {Method: POST, Path: /implicit}}
"""


def test_route_settings_win_then_the_apis_route_settings_then_its_default() -> None:
    template = cfn.merge_globals(cfn.loads_template(TEMPLATE))
    throttles = {
        route.path: route.throttle
        for route in load_routes(template, cfn.TemplateDefaults(template, parameters={"Rate": 9}))
    }
    assert throttles == {
        "/own": Throttle(rate=5, burst=9),  # the event's settings, parameters resolved
        "/keyed": Throttle(rate=9, burst=30),  # per limit: the API's RouteSettings, else its default
        "/plain": Throttle(rate=9, burst=20),
        "/implicit": Throttle(rate=1, burst=2),  # SAM's implicit API takes Globals' HttpApi
    }
    bare = cfn.loads_template(TEMPLATE.replace("Globals:", "Unused:"))
    assert {route.path: route.throttle for route in load_routes(bare)}["/implicit"] is None  # none: unlimited


def test_the_templates_routes_get_the_throttle_of_their_kind_from_the_stacks_parameters() -> None:
    template = cfn.merge_globals(cfn.load_template(ROOT / "template.yaml"))
    parameters = {"CallRoutesThrottlingBurstLimit": 11, "OtherRoutesThrottlingRateLimit": 0}
    resolver = cfn.TemplateDefaults(template, parameters=parameters)
    routes = {route.path: route.throttle for route in load_routes(template, resolver)}
    assert routes["/webhooks/workflow/dialer"] == Throttle(rate=2000, burst=11)
    assert routes["/webhooks/{product}/plan"] == Throttle(rate=0, burst=1000)
    assert all(throttle is not None for throttle in routes.values())
