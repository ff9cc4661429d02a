"""The standard cases, run for every sample in events/ against every route of template.yaml, over HTTP.

A new webhook type gets these tests by adding its sample: nothing here names a route.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from airudder_ingest.base.events import iso_utc, to_utc
from airudder_ingest.models import ROUTES, EventFacts, WebhookModel, calls, chatbot, model_for, read_facts, spellings
from airudder_ingest.storage.archive import archive_line
from tools.local_aws import template as cfn
from tools.local_aws.gateway import load_routes, match_route
from tools.local_aws.stack import LocalStack
from tools.simulator.bodies import reordered_json

from ..stack_support import ROOT, Client, Inspector, Sample, all_samples

SAMPLES = all_samples()
pytestmark = pytest.mark.integration
# The routes of template.yaml, read once for parametrising (the tests themselves use the stack's).
TEMPLATE_ROUTES = load_routes(cfn.merge_globals(cfn.load_template(ROOT / "template.yaml")))


def model_of(stack: LocalStack | None, sample: Sample) -> Any:
    found = match_route(stack.route_objects if stack else TEMPLATE_ROUTES, "POST", sample.path)
    assert found is not None, f"no route of template.yaml takes {sample.path}"
    route, params = found
    return model_for(route.path, params)


Path = tuple[str | int, ...]


# Every spelling of an identifier the models look for (what a missing-identifier body leaves out).
IDENTIFIER_KEYS = frozenset(
    {*spellings.CALL_ID, *spellings.TASK_ID, *spellings.CASE_ID, *spellings.AGENT}
    | {*calls.PLAN_ID, *chatbot.SESSION_ID, *chatbot.MSG_ID, *chatbot.CHAT_TASK_ID}
    | {"workflow_id", "nodetask_id", "node_id", "waba_task_id", "wfdetail_uuid"}
)


def identifier_paths(body: Any, facts: EventFacts) -> list[Path]:
    """Where in `body` the model reads an identifier: every key spelled as one, or holding one of the ids
    in its facts."""
    ids = {
        facts.entity_id,
        facts.call_id,
        facts.case_id,
        facts.task_id,
        facts.workflow_id,
        facts.nodetask_id,
        facts.agent,
    } - {None}
    found: list[Path] = []

    def walk(value: Any, path: Path) -> None:
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
        for key, item in items:
            # Spelled as an identifier outside lists (the models read no list for ids), or holding a read id.
            named = (key in IDENTIFIER_KEYS and not any(isinstance(p, int) for p in path)) or str(item).strip() in ids
            if isinstance(key, str) and isinstance(item, str | int) and str(item).strip() and named:
                found.append((*path, key))
            walk(item, (*path, key))

    walk(body, ())
    return found


def without(body: Any, paths: list[Path]) -> Any:
    """A copy of `body` without the keys at `paths`."""
    copy = json.loads(json.dumps(body))
    for path in paths:
        parent = copy
        for part in path[:-1]:
            parent = parent[part]
        parent.pop(path[-1])
    return copy


def _missing_identifier_cases() -> list[Any]:
    """Each sample without one identifier it carries, and without all of them: generated, never copied."""
    cases = []
    for sample in SAMPLES:
        model = model_of(None, sample)
        body = sample.body()
        if not isinstance(body, dict) or model.accepts_any_json:
            continue
        paths = identifier_paths(body, read_facts(model, body))
        for path in paths:
            cases.append(pytest.param(sample, [path], id=f"{sample.name}-{'.'.join(map(str, path))}"))
        if len(paths) > 1:
            cases.append(pytest.param(sample, paths, id=f"{sample.name}-all"))
    return cases


def test_there_is_a_sample_for_every_route(stack: LocalStack) -> None:
    covered = set()
    for sample in SAMPLES:
        found = match_route(stack.route_objects, "POST", sample.path)
        assert found is not None
        covered.add(found[0].path)
    assert covered == set(ROUTES)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_sample_is_stored_once_and_a_reshaped_redelivery_is_a_duplicate(
    sample: Sample, client: Client, inspector: Inspector, stack: LocalStack
) -> None:
    # Given a sample body, as AIRUDDER would post it
    model = model_of(stack, sample)
    raw = sample.file.read_bytes()
    # When it is delivered
    first = client.post(sample.path, None, raw=raw)
    # Then it is stored once, under its type, with the raw body archived byte for byte
    assert first.status_code == 200, first.text
    assert first.json() == {}
    assert first.headers["x-ingest-outcome"] == "stored"
    event_id = first.headers["x-event-id"]
    event = inspector.event(event_id)
    assert event is not None and event["webhook_type"] == model.webhook_type
    assert inspector.archived(event)["body"].encode() == raw
    # And a redelivery with other key order and whitespace is a duplicate of it
    again = client.post(sample.path, None, raw=reordered_json(sample.body(), indent=7).encode())
    assert again.status_code == 200
    assert (again.headers["x-ingest-outcome"], again.headers["x-event-id"]) == ("duplicate", event_id)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_a_delivery_costs_one_event_write_and_one_state_write(
    sample: Sample, client: Client, stack: LocalStack
) -> None:
    assert stack.faults is not None
    body = {**sample.body(), "_cost_probe": sample.name} if isinstance(sample.body(), dict) else sample.body()
    facts = read_facts(model_of(stack, sample), body)
    stack.faults.reset_calls()
    answer = client.post(sample.path, body)
    assert answer.status_code == 200, answer.text
    writes = stack.faults.count("dynamodb", "PutItem") + stack.faults.count("dynamodb", "UpdateItem")
    assert stack.faults.count("s3") == 0  # the archive is written by the archiver, from the table's stream
    assert writes == (1 if facts.entity_kind == "DELIVERY" else 2)
    assert stack.faults.count("sqs", "SendMessage") == (1 if facts.recording_url else 0)
    assert stack.faults.count("dynamodb") == writes  # no reads on the ingest path


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_no_token_or_a_wrong_one_stores_nothing(sample: Sample, client: Client, inspector: Inspector) -> None:
    items, objects = inspector.item_count(), len(inspector.keys())
    for token in (None, "", "not-the-token"):
        answer = client.post(sample.path, sample.body(), token=token)
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthorized"
    assert (inspector.item_count(), len(inspector.keys())) == (items, objects)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_malformed_json_is_quarantined_with_400(sample: Sample, client: Client, inspector: Inspector) -> None:
    broken = sample.file.read_bytes()[:-3] + b",,"
    answer = client.post(sample.path, None, raw=broken)
    assert answer.status_code == 400
    reply = answer.json()
    assert reply["error"] == "invalid_payload" and "not valid JSON" in reply["message"]
    kept = inspector.store().get_quarantine(reply["quarantine_id"])
    assert kept is not None and inspector.archived(kept)["body"].encode() == broken
    assert kept["http_status"] == 400 and "not valid JSON" in kept["reason"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
@pytest.mark.parametrize("not_an_object", ["a JSON string, not an object", [1, 2]], ids=["string", "array"])
def test_json_that_is_not_an_object_is_quarantined_with_400(
    sample: Sample, not_an_object: Any, client: Client, inspector: Inspector, stack: LocalStack
) -> None:
    model: type[WebhookModel] = model_of(stack, sample)
    answer = client.post(sample.path, not_an_object)
    if model.accepts_any_json:
        assert answer.status_code == 200  # the catch-all keeps any JSON
        return
    assert answer.status_code == 400, answer.text
    reply = answer.json()
    assert reply["error"] == "invalid_payload" and "not an object" in reply["message"]
    # (The same body posted to every route: one quarantined copy per webhook type.)
    kept = inspector.store().get_quarantine(reply["quarantine_id"])
    assert kept is not None and kept["webhook_type"] == model.webhook_type
    assert json.loads(inspector.archived(kept)["body"]) == not_an_object


@pytest.mark.parametrize(("sample", "removed"), _missing_identifier_cases())
def test_a_body_missing_an_identifier_is_stored_where_it_can_be_found(
    sample: Sample, removed: list[Path], client: Client, inspector: Inspector, stack: LocalStack
) -> None:
    # Given a sample without an identifier its model reads (or without all of them)
    model = model_of(stack, sample)
    original = read_facts(model, sample.body())
    body = without(sample.body(), removed)
    # When it is delivered
    answer = client.post(sample.path, body)
    # Then it is stored, 200 {}, as the model reads it
    assert (answer.status_code, answer.json()) == (200, {}), answer.text
    assert answer.headers["x-ingest-outcome"] == "stored"
    store = inspector.store()
    event = inspector.event(answer.headers["x-event-id"])
    assert event is not None and json.loads(inspector.archived(event)["body"]) == body
    expected = read_facts(model, body)
    assert (event["entity_kind"], event["entity_id"]) == (expected.entity_kind, expected.entity_id or event["event_id"])
    assert event.get("unreadable", []) == list(expected.unreadable)
    if (expected.entity_kind, expected.entity_id) != (original.entity_kind, original.entity_id):
        # Not filed where the complete body is: the event says which fact it lacks
        assert event["unreadable"], "filed under a fallback entity without saying why"
    if event.get("unreadable"):
        # and its archive line (what the archiver writes, and `airudder-data unreadable` lists) says so
        line = archive_line(event, inspector.archived(event))
        assert line["unreadable"] == event["unreadable"] and line["event_id"] == event["event_id"]
    if expected.entity_kind != "DELIVERY":
        # and its entity (the fallback one) holds it, or a newer event
        assert store.get_state(expected.entity_kind, expected.entity_id) is not None
    for fact in ("phone", "case_id", "workflow_id", "task_id"):
        # The identifiers left in the body still find it
        assert event.get(fact) == (getattr(expected, fact) and event.get(fact))


def _earlier(raw: Any) -> Any:
    """A time one hour before `raw`, in the same form."""
    if isinstance(raw, int | float):
        return raw - (3_600_000 if raw > 100_000_000_000 else 3_600)
    if isinstance(raw, str) and raw.strip().isdigit():
        return str(int(raw) - (3_600_000 if int(raw) > 100_000_000_000 else 3_600))
    moment = to_utc(raw)
    assert moment is not None
    return iso_utc(moment - timedelta(hours=1))


def _replace(value: Any, old: Any, new: Any) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return new if value == old and type(value) is type(old) else value


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_an_older_delivery_arriving_late_leaves_the_newer_state(
    sample: Sample, client: Client, inspector: Inspector, stack: LocalStack
) -> None:
    model = model_of(stack, sample)
    body = sample.body()
    facts = read_facts(model, body)
    if facts.entity_kind == "DELIVERY" or facts.event_time in (None, ""):
        pytest.skip("no time in the body: such events are ordered by receipt")
    # Given the sample is stored (as the newest event of its entity)
    client.post(sample.path, body)
    store = inspector.store()
    before = store.get_state(facts.entity_kind, facts.entity_id)
    assert before is not None
    # When a version of it one hour older arrives afterwards
    older = _replace(body, facts.event_time, _earlier(facts.event_time))
    answer = client.post(sample.path, older)
    # Then it is stored as an event, but the entity's state does not move back
    assert answer.headers["x-ingest-outcome"] == "stored"
    assert inspector.event(answer.headers["x-event-id"]) is not None
    after = store.get_state(facts.entity_kind, facts.entity_id)
    assert after is not None
    assert (after["last_event_id"], after["last_event_time"]) == (before["last_event_id"], before["last_event_time"])
