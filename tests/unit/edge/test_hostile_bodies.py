"""Bodies that once made the webhook edge answer 500 (found by the hostile-request drill, test_drills.py):
each is now quarantined and answered 400 once the sender is authenticated, and 401 before that. And the
guarantee of issue 11: after authentication, a failure of our code keeps the body and answers 400 the
same on every try; only a failing AWS call answers 5xx."""

from __future__ import annotations

import base64
import hashlib
import json
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airudder_ingest.base.events import canonical_json, event_id, iso_utc, parse_offset, to_utc, utf8_text
from airudder_ingest.base.limits import DIGEST_PREFIX, key_part, storable
from airudder_ingest.edge.apigw import parse_event
from airudder_ingest.storage.archive import body_of, unpack_envelope
from airudder_ingest.sync.client import AirudderApiSettings, AirudderClient, AirudderCredentials
from airudder_ingest.sync.job import SyncReport, SyncSettings, WorkflowSync
from airudder_ingest.sync.job import _Run as _SyncRun

from ..aws_support import TABLE
from .edge_support import api_event, make_edge

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
def test_unreadable_bodies_are_quarantined_with_400(aws: dict[str, Any], body: str, is_base64: bool) -> None:
    edge = make_edge(aws)
    answer = edge.handle(raw_event(body, is_base64=is_base64))
    assert answer["statusCode"] == 400
    quarantine_id = json.loads(answer["body"])["quarantine_id"]
    item = aws["dynamodb"].get_item(TableName=TABLE, Key={"pk": {"S": f"Q#{quarantine_id}"}, "sk": {"S": "Q"}})
    assert item["Item"]["http_status"]["N"] == "400"


def test_an_unreadable_body_without_the_token_is_refused_401_and_kept_nowhere(aws: dict[str, Any]) -> None:
    edge = make_edge(aws)
    answer = edge.handle(raw_event("abc", is_base64=True, token="wrong"))
    assert answer["statusCode"] == 401
    assert aws["dynamodb"].scan(TableName=TABLE)["Count"] == 0


# ---------------------------------------------------------------------------------- the guarantee (issue 11)


def _boom(*_args: Any, **_kwargs: Any) -> None:
    raise RuntimeError("a bug in our code")


def _aws_down(*_args: Any, **_kwargs: Any) -> None:
    raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, "PutItem")


def test_a_bug_after_authentication_quarantines_the_body_and_answers_400_on_every_try(
    aws: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    edge = make_edge(aws)
    monkeypatch.setattr(edge.recorder.store, "apply_state", _boom)
    answers = [edge.handle(api_event(SAMPLE)) for _ in range(2)]
    assert [a["statusCode"] for a in answers] == [400, 400]
    first, second = (json.loads(a["body"]) for a in answers)
    assert first == second and first["error"] == "unprocessable_payload"
    assert "RuntimeError" in first["message"] and "a bug in our code" not in first["message"]  # never the text
    item = aws["dynamodb"].get_item(TableName=TABLE, Key={"pk": {"S": f"Q#{first['quarantine_id']}"}, "sk": {"S": "Q"}})
    assert body_of(unpack_envelope(item["Item"]["envelope"]["B"])) == json.dumps(SAMPLE).encode()


def test_a_bug_whose_quarantine_fails_on_aws_answers_503(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    edge = make_edge(aws)
    monkeypatch.setattr(edge.recorder.store, "apply_state", _boom)
    monkeypatch.setattr(edge.recorder.store, "put_quarantine", _aws_down)
    assert edge.handle(api_event(SAMPLE))["statusCode"] == 503


def test_a_failing_aws_call_still_answers_503(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    edge = make_edge(aws)
    monkeypatch.setattr(edge.recorder.store, "apply_state", _aws_down)
    assert edge.handle(api_event(SAMPLE))["statusCode"] == 503


def test_a_bug_before_authentication_keeps_nothing(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    edge = make_edge(aws)
    monkeypatch.setattr(edge.recorder.store, "apply_state", _boom)
    assert edge.handle(api_event(SAMPLE, token="wrong"))["statusCode"] == 401
    assert aws["dynamodb"].scan(TableName=TABLE)["Count"] == 0


@pytest.mark.parametrize(
    "value",
    [1e400, float("-inf"), float("nan"), 1e300, -1e17, 10**400, "9" * 400, "12345678901234567890123",
     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31 23:30:00", "1e400", True, {"a": 1}],
)  # fmt: skip
def test_every_time_out_of_range_is_a_value_error(value: Any) -> None:
    with pytest.raises(ValueError):
        to_utc(value, parse_offset("-01:00"))


def test_times_at_the_edges_of_the_range_keep_a_fixed_width() -> None:
    assert iso_utc(to_utc("0001-01-01T00:00:00Z") or _never()) == "0001-01-01T00:00:00.000Z"
    assert iso_utc(to_utc("9999-12-31T23:59:59.999Z") or _never()) == "9999-12-31T23:59:59.999Z"


def _never() -> Any:
    raise AssertionError("no time")


def test_event_ids_of_ordinary_bodies_are_unchanged_and_surrogates_get_one() -> None:
    # The id of an ordinary body is the one it always had (sha256 of the type and the canonical UTF-8).
    body = {"b": "é", "a": [1, 2.5, None]}
    expected = hashlib.sha256(b'x.y\n{"a":[1,2.5,null],"b":"\xc3\xa9"}').hexdigest()[:32]
    assert event_id("x.y", body) == expected
    assert event_id("x.y", {"a": "\ud800"}) == event_id("x.y", json.loads('{"a": "\\ud800"}'))
    assert event_id("x.y", {"a": "\ud800"}) != event_id("x.y", {"a": "\udc00"})
    assert json.loads(utf8_text(canonical_json({"a": "\ud800é"}))) == {"a": "\ud800é"}


def test_values_are_made_storable() -> None:
    stored = storable({"i": 10**400, "f": 1e300, "inf": float("inf"), "d": 1.5, "s": "x\ud800", "n": [2**70, 0]})
    assert stored == {"i": "1" + "0" * 400, "f": "1e+300", "inf": "inf", "d": Decimal("1.5"), "s": "x\\ud800",
                      "n": [Decimal(2**70), Decimal(0)]}  # fmt: skip
    assert key_part("abc", 10) == "abc"
    long = key_part("c" * 3_000, 1_000)
    assert long.startswith(DIGEST_PREFIX) and long == key_part("c" * 3_000, 1_000) and len(long) == 71
    assert key_part("a\ud800", 100).startswith(DIGEST_PREFIX)


def test_a_pulled_record_our_code_fails_on_is_quarantined_and_the_sync_moves_on(
    aws: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    edge = make_edge(aws)
    edge.recorder.recordings = None  # the sync queues recordings itself
    client = AirudderClient(lambda: AirudderCredentials("k", "s"), AirudderApiSettings(base_url="http://127.0.0.1:9"))
    sync = WorkflowSync(SyncSettings(), edge.recorder, client, None)
    records = [{"call_id": "c-ok-1", "status": "ok"}, {"call_id": "c-bad", "status": "ok"}, {"call_id": "c-ok-2"}]
    convert = sync.mapping.convert

    def fails_on_bad(record: Any) -> Any:
        if record.get("call_id") == "c-bad":
            raise RuntimeError("a bug in our code")
        return convert(record)

    monkeypatch.setattr(sync, "mapping", SimpleNamespace(convert=fails_on_bad, webhook_type="workflow.call",
                                                         route="/webhooks/workflow/call"))  # fmt: skip
    report = SyncReport("run")
    sync._store_page(_SyncRun(report, lambda: 60_000, "run"), records, "2026-11-01T00:00:00.000Z", {"page": "1"})
    assert (report.fetched, report.new, report.quarantined) == (3, 2, 1)
    quarantined = [i for i in aws["dynamodb"].scan(TableName=TABLE)["Items"] if i["item_type"]["S"] == "quarantine"]
    assert len(quarantined) == 1 and quarantined[0]["source"]["S"] == "sync"
    assert "RuntimeError" in quarantined[0]["reason"]["S"]
    assert json.loads(body_of(unpack_envelope(quarantined[0]["envelope"]["B"]))) == records[1]


def test_a_failing_aws_call_still_stops_the_sync(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    edge = make_edge(aws)
    edge.recorder.recordings = None
    client = AirudderClient(lambda: AirudderCredentials("k", "s"), AirudderApiSettings(base_url="http://127.0.0.1:9"))
    sync = WorkflowSync(SyncSettings(), edge.recorder, client, None)
    monkeypatch.setattr(edge.recorder.store, "apply_state", _aws_down)
    with pytest.raises(ClientError):
        sync._store_page(_SyncRun(SyncReport("run"), lambda: 60_000, "run"), [{"call_id": "c1"}], "2026-11-01", {})


def test_a_pulled_record_that_is_not_an_object_is_quarantined_and_counted(aws: dict[str, Any]) -> None:
    edge = make_edge(aws)
    edge.recorder.recordings = None
    client = AirudderClient(lambda: AirudderCredentials("k", "s"), AirudderApiSettings(base_url="http://127.0.0.1:9"))
    sync = WorkflowSync(SyncSettings(), edge.recorder, client, None)
    records: list[Any] = [{"call_id": "c-ok"}, "c-as-text", [1, 2], None]
    report = SyncReport("run")
    sync._store_page(_SyncRun(report, lambda: 60_000, "run"), records, "2026-11-01T00:00:00.000Z", {"page": "1"})
    assert (report.fetched, report.new, report.quarantined) == (4, 1, 3)
    quarantined = [i for i in aws["dynamodb"].scan(TableName=TABLE)["Items"] if i["item_type"]["S"] == "quarantine"]
    assert len(quarantined) == 3 and all("not a JSON object" in q["reason"]["S"] for q in quarantined)
    kept = {body_of(unpack_envelope(q["envelope"]["B"])) for q in quarantined}
    assert {_as_text(k) for k in kept} == {'"c-as-text"', "[1,2]", "null"}  # each kept as it came


def _as_text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def test_a_listing_keeps_entries_that_are_not_objects_for_the_sync() -> None:
    from airudder_ingest.sync.client import DEFAULT_PAGE_SCHEME

    answer = {DEFAULT_PAGE_SCHEME.items_key: [{"a": 1}, "text", 3]}
    assert DEFAULT_PAGE_SCHEME.items(answer) == [{"a": 1}, "text", 3]
    assert list(DEFAULT_PAGE_SCHEME.iterate(lambda _: answer, page_size=10, max_pages=1)) == [{"a": 1}]
