"""Bodies that once made the pipeline answer 500 (found by the hostile-request drill, test_drills.py):
each is now quarantined and answered 400 once the sender is authenticated, and 401 before that."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from airudder_ingest.apigw import parse_event

from .test_pipeline import TABLE, api_event, aws, make_pipeline  # noqa: F401 - aws is a fixture

SAMPLE = {"pds": {"type": "ContactStatus", "body": {"callid": "c-hostile", "state": "HANGUP"}}}


def raw_event(body: Any, *, is_base64: bool, token: str | None = "unit-token") -> dict[str, Any]:
    event = api_event(SAMPLE, token=token)
    event["body"], event["isBase64Encoded"] = body, is_base64
    return event


@pytest.mark.parametrize(
    ("body", "is_base64", "error"),
    [
        ("abc", True, "flagged base64"),  # bad padding
        ("eyJh!!", True, "flagged base64"),  # characters outside the alphabet are not skipped
        ("é", True, "flagged base64"),  # not ASCII
        (42, False, "not a string"),
        (base64.b64encode(b'{"a": 1}').decode(), True, None),
        ('{"a": "\ud800"}', False, None),  # a lone surrogate: kept, as bytes that are not UTF-8
    ],
)
def test_parse_event_never_raises_and_says_why_a_body_is_unreadable(
    body: Any, is_base64: bool, error: str | None
) -> None:
    request = parse_event(raw_event(body, is_base64=is_base64))
    if error is None:
        assert request.body_error is None
    else:
        assert request.body_error is not None and error in request.body_error


def test_a_lone_surrogate_is_kept_as_invalid_utf8() -> None:
    request = parse_event(raw_event('{"a": "\ud800"}', is_base64=False))
    with pytest.raises(UnicodeDecodeError):
        request.body.decode("utf-8")


@pytest.mark.parametrize(
    ("body", "is_base64"),
    [
        ("abc", True),
        ('{"a": "\ud800"}', False),
        ("[" * 50_000 + "]" * 50_000, False),  # nested deeper than the JSON parser goes
        ('{"a":' * 20_000 + "1" + "}" * 20_000, False),
    ],
)
def test_unreadable_bodies_are_quarantined_with_400(aws: dict[str, Any], body: str, is_base64: bool) -> None:  # noqa: F811
    pipeline = make_pipeline(aws)
    answer = pipeline.handle(raw_event(body, is_base64=is_base64))
    assert answer["statusCode"] == 400
    quarantine_id = json.loads(answer["body"])["quarantine_id"]
    item = aws["dynamodb"].get_item(TableName=TABLE, Key={"pk": {"S": f"Q#{quarantine_id}"}, "sk": {"S": "Q"}})
    assert item["Item"]["http_status"]["N"] == "400"


def test_an_unreadable_body_without_the_token_is_refused_401_and_kept_nowhere(aws: dict[str, Any]) -> None:  # noqa: F811
    pipeline = make_pipeline(aws)
    answer = pipeline.handle(raw_event("abc", is_base64=True, token="wrong"))
    assert answer["statusCode"] == 401
    assert aws["dynamodb"].scan(TableName=TABLE)["Count"] == 0
