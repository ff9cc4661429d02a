"""The sync's pure parts: the record -> webhook body mapping, settings, windows, cursor, credentials,
resumable paging, and the template's SyncFunction agreeing with the code."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from airudder_ingest.base.events import canonical_json, event_id
from airudder_ingest.models import WebhookModel, model_for
from airudder_ingest.sync.client import AirudderApiSettings, PageScheme
from airudder_ingest.sync.job import (
    CALL_ROUTE,
    PLACEHOLDER_PREFIX,
    PULL_ONLY_KEYS,
    CredentialsMissing,
    Cursor,
    RecordMapping,
    SyncSettings,
    plan_window,
    secret_credentials,
    webhook_body,
)
from tools.local_aws.template import load_template, merge_globals
from tools.simulator import Dataset, DatasetConfig, call_completed_body, call_record

ROOT = Path(__file__).resolve().parents[3]
BASE = "https://sim.example"


def calls(n: int = 12) -> list[Any]:
    return Dataset(DatasetConfig(seed=7, workflows=1, calls_per_workflow=n)).calls()


# --- the mapping ---------------------------------------------------------------------------------------


def test_a_pulled_record_becomes_the_call_completion_webhook_body() -> None:
    for call in calls():
        record = call_record(call, BASE)
        body = webhook_body(record)
        assert body == call_completed_body(call, BASE)
        # ... so the webhook and the sync give the call one and the same event id.
        assert event_id("workflow.call", body) == event_id("workflow.call", call_completed_body(call, BASE))
        assert set(record) - set(body) == set(PULL_ONLY_KEYS)


def test_the_mapping_only_drops_keys_and_never_retypes_values() -> None:
    record = {"call_id": "c1", "talk_duration": "35", "update_time": "2026-11-01 00:00:00", "extra": {"a": 1}}
    assert webhook_body(record) == {"call_id": "c1", "talk_duration": "35", "extra": {"a": 1}}
    assert webhook_body(record, ["extra"]) == {
        "call_id": "c1",
        "talk_duration": "35",
        "update_time": record["update_time"],
    }
    assert webhook_body(record, []) == record


def test_record_mapping_files_a_call_like_the_webhook_model_does() -> None:
    mapping = RecordMapping()
    call = calls(1)[0]
    converted = mapping.convert(call_record(call, BASE))
    assert converted.matched and mapping.webhook_type == "workflow.call"
    model = model_for(CALL_ROUTE)
    assert model is not None
    expected = model.model_validate(call_completed_body(call, BASE)).facts()
    assert converted.facts == expected and converted.facts.entity_kind == "CALL"
    assert converted.facts.recording_url == (f"{BASE}/recordings/{call.call_id}.wav" if call.answered else None)


def test_a_record_that_names_no_call_or_case_is_kept_whole() -> None:
    record = {"workflow_id": "w1", "task_id": 42, "status": "x", "update_time": "2026-11-01 00:00:05"}
    converted = RecordMapping().convert(record)
    assert not converted.matched
    assert converted.body == record  # pull-only keys and all: nothing is lost
    facts = converted.facts
    assert (facts.entity_kind, facts.entity_id, facts.workflow_id, facts.task_id) == ("DELIVERY", None, "w1", "42")
    assert facts.event_time == "2026-11-01 00:00:05"


def test_a_record_with_a_value_no_field_can_take_is_still_read_as_its_call() -> None:
    # Given a pulled call record whose task id is an object, which no id field can take
    record = {"call_id": "c-odd", "case_id": "k1", "task_id": {"nested": 1}, "end_time": "not a time"}
    # When it is mapped, Then it is filed under its call, with what could not be read named
    converted = RecordMapping().convert(record)
    assert converted.matched and (converted.facts.entity_kind, converted.facts.entity_id) == ("CALL", "c-odd")
    assert converted.facts.case_id == "k1" and "task_id" in converted.facts.unreadable


def test_the_mapping_route_is_configurable_and_checked() -> None:
    info = RecordMapping(route="/webhooks/workflow/infocheck-call")
    assert info.webhook_type == "workflow.infocheck_call"
    assert issubclass(info.model, WebhookModel)
    with pytest.raises(ValueError, match="no webhook model"):
        RecordMapping(route="/webhooks/nowhere/at-all")


# --- settings --------------------------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    settings = SyncSettings.from_env(
        {
            "AIRUDDER_API_SECRET": "arn:secret",
            "SYNC_OVERLAP_SECONDS": "120",
            "SYNC_INITIAL_LOOKBACK_HOURS": "2.5",
            "SYNC_MAX_WINDOW_MINUTES": "60",
            "SYNC_PULL_ONLY_KEYS": " node_type, update_time ,",
            "SYNC_STORE_CONCURRENCY": "4",
            "UNRELATED": "x",
        }
    )
    assert settings.api_secret_name == "arn:secret" and settings.overlap == dt.timedelta(minutes=2)
    assert settings.initial_lookback == dt.timedelta(hours=2.5) and settings.max_window == dt.timedelta(hours=1)
    assert settings.pull_only_keys == ("node_type", "update_time") and settings.store_concurrency == 4
    defaults = SyncSettings.from_env({})
    assert (defaults.pull_only_keys, defaults.call_route, defaults.job) == (
        PULL_ONLY_KEYS,
        CALL_ROUTE,
        "workflow-calls",
    )


@pytest.mark.parametrize(
    "env",
    [
        {"SYNC_MAX_WINDOW_MINUTES": "5", "SYNC_OVERLAP_SECONDS": "300"},  # a window no longer than the overlap
        {"SYNC_CALL_ROUTE": "/webhooks/nope"},
        {"SYNC_OVERLAP_SECONDS": "-1"},
        {"SYNC_STORE_CONCURRENCY": "0"},
    ],
)
def test_settings_that_could_never_work_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        SyncSettings.from_env(env)


# --- windows and cursor ----------------------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 23, 12, 0, 30, 987_000, tzinfo=dt.UTC)


def test_the_first_window_reaches_back_the_initial_lookback_in_max_window_steps() -> None:
    settings = SyncSettings(initial_lookback_hours=24, max_window_minutes=360)
    start, end = plan_window(None, NOW, settings) or (None, None)
    assert start == dt.datetime(2026, 11, 22, 12, 0, 30, tzinfo=dt.UTC)  # whole seconds
    assert end == start + dt.timedelta(hours=6)


def test_later_windows_start_an_overlap_before_the_watermark_and_stop_at_now() -> None:
    settings = SyncSettings(overlap_seconds=300, max_window_minutes=360)
    watermark = NOW - dt.timedelta(minutes=15)
    assert plan_window(watermark, NOW, settings) == (
        watermark.replace(microsecond=0) - dt.timedelta(minutes=5),
        NOW.replace(microsecond=0),
    )
    assert plan_window(NOW.replace(microsecond=0), NOW, settings) is None  # caught up
    assert plan_window(NOW + dt.timedelta(hours=1), NOW, settings) is None  # clock went back: wait
    # A long outage is caught up in steps: each window moves the watermark past the overlap.
    old = NOW - dt.timedelta(days=3)
    start, end = plan_window(old, NOW, settings) or (None, None)
    assert start is not None and end is not None and end - start == dt.timedelta(hours=6) and end > old


def test_cursor_round_trip_and_resume_point() -> None:
    cursor = Cursor("2026-11-01T00:00:00.000Z", "2026-11-01T06:00:00.000Z", done_workflows=["w1"])
    cursor.enter_workflow("w2")
    cursor.enter_task("t1")
    assert cursor.resume_point() == (None, 0)  # nothing read yet: from the first page
    cursor.page, cursor.seen, cursor.last_page_len = 4, 300, 100
    assert Cursor.from_json(cursor.to_json()) == cursor
    # Resuming reads the last page read again, counting the records before it.
    assert cursor.resume_point() == (3, 200)
    cursor.enter_task("t1")  # same task: position kept
    assert cursor.page == 4
    cursor.enter_workflow("w3")  # another workflow: its tasks start afresh
    assert (cursor.workflow, cursor.done_tasks, cursor.task, cursor.page) == ("w3", [], None, None)


def test_pages_resume_at_a_page_and_still_stop_on_the_total() -> None:
    rows = [{"n": i} for i in range(10)]
    asked: list[int] = []

    def fetch(params: dict[str, int]) -> Any:
        asked.append(params["page"])
        first = (params["page"] - 1) * params["page_size"]
        return {"list": rows[first : first + params["page_size"]], "total": len(rows)}

    scheme = PageScheme()
    assert [(p, len(items)) for p, items in scheme.pages(fetch, 4, 100)] == [(1, 4), (2, 4), (3, 2)]
    asked.clear()
    resumed = list(scheme.pages(fetch, 4, 100, start_page=2, already_seen=4))
    assert [p for p, _ in resumed] == [2, 3] and asked == [2, 3]
    assert [r["n"] for _, items in resumed for r in items] == list(range(4, 10))
    # Pages are fetched only when asked for: a caller that stops early makes no further request.
    asked.clear()
    pages = scheme.pages(fetch, 4, 100)
    next(pages)
    assert asked == [1]


# --- credentials -------------------------------------------------------------------------------------------


def fetcher(value: Any) -> Any:
    def fetch(name: str, max_age: int, force: bool) -> Any:
        if isinstance(value, Exception):
            raise value
        return value

    return fetch


def test_credentials_come_from_the_secret() -> None:
    creds = secret_credentials("s", fetch=fetcher('{"APPKey": "k", "APPSecret": "v"}'))()
    assert (creds.app_key, creds.app_secret) == ("k", "v")
    assert "v" not in repr(creds) and "k" not in repr(creds).replace("Airudder", "").replace("key", "")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (f'{{"APPKey": "{PLACEHOLDER_PREFIX}APP_KEY", "APPSecret": "{PLACEHOLDER_PREFIX}APP_SECRET"}}', "placeholder"),
        ('{"APPKey": "k"}', "not {"),
        ("not json at all, s3cr3t", "could not be read"),
        (RuntimeError("AccessDenied"), "could not be read"),
    ],
)
def test_unusable_credentials_are_refused_without_showing_them(value: Any, reason: str) -> None:
    with pytest.raises(CredentialsMissing, match=reason) as caught:
        secret_credentials("s", fetch=fetcher(value))()
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(CredentialsMissing, match="not set"):
        secret_credentials("", fetch=fetcher("{}"))()


# --- the template agrees with the code ---------------------------------------------------------------------

TEMPLATE = merge_globals(load_template(ROOT / "template.yaml"))
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def test_sync_function_settings_match_the_code_defaults() -> None:
    props = RESOURCES["SyncFunction"]["Properties"]
    env = props["Environment"]["Variables"]
    assert (props["CodeUri"], props["Handler"], props["Architectures"]) == (
        "functions/sync/",
        "app.lambda_handler",
        ["arm64"],
    )
    api = AirudderApiSettings()
    for name, info in AirudderApiSettings.model_fields.items():
        if info.validation_alias in env and not isinstance(env[info.validation_alias], dict):
            assert str(env[info.validation_alias]) == str(getattr(api, name)), name
    assert env["AIRUDDER_API_SECRET"] == {"Ref": "AirudderApiSecret"}
    assert env["AIRUDDER_API_BASE_URL"] == {"Ref": "AirudderApiBaseUrl"}
    assert TEMPLATE["Parameters"]["AirudderApiBaseUrl"]["Default"] == api.base_url
    settings = SyncSettings.from_env({k: v for k, v in env.items() if isinstance(v, str)})
    assert settings.pull_only_keys == PULL_ONLY_KEYS and settings.call_route == CALL_ROUTE
    assert settings.time_margin_seconds < props["Timeout"] / 2


def test_sync_schedule_rate_is_a_parameter_and_can_be_disabled() -> None:
    schedule = RESOURCES["SyncFunction"]["Properties"]["Events"]["Schedule"]
    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["Schedule"] == {"Ref": "SyncScheduleRate"}
    assert schedule["Properties"]["State"] == {"Fn::If": ["SyncScheduleOn", "ENABLED", "DISABLED"]}
    assert TEMPLATE["Conditions"]["SyncScheduleOn"] == {"Fn::Equals": [{"Ref": "SyncScheduleEnabled"}, "true"]}


def test_sync_secret_holds_placeholders_the_code_recognises() -> None:
    secret = json.loads(RESOURCES["AirudderApiSecret"]["Properties"]["SecretString"])
    assert set(secret) == {"APPKey", "APPSecret"}
    assert all(value.startswith(PLACEHOLDER_PREFIX) for value in secret.values())


def test_sync_role_is_least_privilege() -> None:
    statements = RESOURCES["SyncFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    grants: dict[str, Any] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow" and statement["Resource"] != "*"
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        for action in actions:
            grants[action] = statement["Resource"]
    assert set(grants) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "s3:PutObject",
        "sqs:SendMessage",
        "secretsmanager:GetSecretValue",
    }
    assert grants["s3:PutObject"] == {"Fn::Sub": "${ArchiveBucket.Arn}/claims/*"}
    assert grants["secretsmanager:GetSecretValue"] == {"Ref": "AirudderApiSecret"}
    assert grants["logs:PutLogEvents"] == {"Fn::Sub": "${SyncLogGroup.Arn}:*"}
    props = RESOURCES["SyncFunction"]["Properties"]
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": "SyncLogGroup"}
    assert RESOURCES["SyncLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_sync_errors_raise_an_alarm() -> None:
    alarm = RESOURCES["SyncErrorsAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert metrics["stopped"]["MetricStat"]["Metric"]["MetricName"] == "SyncErrors"
    assert metrics["crashed"]["MetricStat"]["Metric"]["Dimensions"][0]["Value"] == {"Ref": "SyncFunction"}
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_canonical_body_is_what_the_event_id_hashes() -> None:
    call = calls(1)[0]
    body = webhook_body(call_record(call, BASE))
    assert canonical_json(body) == canonical_json(json.loads(json.dumps(call_completed_body(call, BASE))))
