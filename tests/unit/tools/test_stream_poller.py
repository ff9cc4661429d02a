"""The local stream poller's event filtering (Lambda's FilterCriteria syntax) and record shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tools.local_aws.stream_poller import filter_patterns, lambda_record, matches

EVENT_ONLY = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"item_type": {"S": ["event"]}}}}


def record(event_name: str, item_type: str | None) -> dict[str, object]:
    image = {"pk": {"S": "x"}} | ({"item_type": {"S": item_type}} if item_type else {})
    return {"eventName": event_name, "dynamodb": {"NewImage": image, "SequenceNumber": "1"}}


def test_the_templates_filter_keeps_new_event_items_only() -> None:
    assert matches(EVENT_ONLY, record("INSERT", "event"))
    assert not matches(EVENT_ONLY, record("MODIFY", "event"))
    assert not matches(EVENT_ONLY, record("INSERT", "state"))
    assert not matches(EVENT_ONLY, record("INSERT", None))  # moto's first INSERT of an UpdateItem: key only


def test_operators() -> None:
    value = {"a": "prefix-1", "n": 5, "s": "x"}
    assert matches({"a": [{"prefix": "prefix-"}]}, value)
    assert matches({"n": [{"numeric": [">", 1, "<=", 5]}]}, value)
    assert not matches({"n": [{"numeric": [">", 5]}]}, value)
    assert matches({"s": [{"anything-but": ["y"]}]}, value)
    assert matches({"missing": [{"exists": False}]}, value) and not matches({"s": [{"exists": False}]}, value)


def test_filter_patterns_and_record_shape() -> None:
    criteria = {"Filters": [{"Pattern": json.dumps(EVENT_ONLY)}]}
    assert filter_patterns(criteria) == [EVENT_ONLY] and filter_patterns(None) == []
    created = datetime(2026, 1, 1, tzinfo=UTC)
    raw = {"eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": created, "Keys": {"pk": {"B": b"\x01"}}}}
    shaped = lambda_record(raw, "arn:stream")
    assert shaped["dynamodb"]["ApproximateCreationDateTime"] == 1767225600
    assert shaped["dynamodb"]["Keys"]["pk"]["B"] == "AQ==" and shaped["eventSourceARN"] == "arn:stream"
