"""Workflow models: tolerant parsing and the facts each one files an event under."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from airudder_ingest.models import (
    ROUTES,
    ByPathParam,
    IdentifierMissing,
    all_models,
    model_for,
    read_facts,
)
from airudder_ingest.models.workflow import (
    WorkflowCallCompleted,
    WorkflowChatbotSessionEnded,
    WorkflowCustomApiPush,
    WorkflowDialerPush,
    WorkflowListCompleted,
    WorkflowStatusChanged,
    WorkflowWabaMessageStatus,
)

REFERENCE = Path(__file__).resolve().parents[4] / "shared" / "airudder-api" / "examples" / "workflow"


def dialer(kind: str, **body: Any) -> dict[str, Any]:
    return {"workflow_id": "wf1", "nodetask_id": "nt1", "pds": {"type": kind, "body": body}}


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference not beside the project")
def test_reference_contact_status_example() -> None:
    body = json.loads((REFERENCE / "dialer_contact_status.json").read_text())
    facts = WorkflowDialerPush.model_validate(body).facts()
    assert (facts.entity_kind, facts.entity_id) == ("CALL", "48ff2faa9de34c0387eb688468d563a5")
    assert facts.status == "HANGUP"
    assert facts.phone == "+8610081"
    assert facts.task_id == "9751a67700274a24b650334587653de6"
    assert facts.workflow_id == "2b6951a25b434657b94d4d60d96fcf18"
    assert facts.event_time == "1668998317236"
    assert facts.recording_url is None  # recLink is "" in the example


def test_dialer_formats_file_under_call_task_and_agent() -> None:
    contact = WorkflowDialerPush.model_validate(dialer("ContactStatus", callid="c1", taskId="t1", state="RINGING"))
    task = WorkflowDialerPush.model_validate(dialer("TaskStatus", taskId="t1", state="Finished", callid="c9"))
    agent = WorkflowDialerPush.model_validate(dialer("AgentStatus", taskId="t1", State="Idle", agentName="a7"))
    assert (contact.facts().entity_kind, contact.facts().entity_id) == ("CALL", "c1")
    assert (task.facts().entity_kind, task.facts().entity_id) == ("DTASK", "t1")
    assert (agent.facts().entity_kind, agent.facts().entity_id, agent.facts().status) == ("AGENT", "a7", "Idle")


def test_dialer_tolerates_spellings_numbers_as_strings_and_unknown_fields() -> None:
    body = dialer("ContactStatus", call_id=12345, task_id="t1", hangupReason="8", newField={"x": 1})
    parsed = WorkflowDialerPush.model_validate(body)
    assert parsed.pds.body.call_id == "12345"
    assert parsed.pds.body.hangup_reason == 8
    assert parsed.pds.body.model_extra == {"newField": {"x": 1}}


def test_dialer_recording_link_only_when_http() -> None:
    with_link = dialer("ContactStatus", callid="c1", recLink="https://rec.airudder.com/a.wav")
    odd_link = dialer("ContactStatus", callid="c1", recLink="file:///etc/passwd")
    assert WorkflowDialerPush.model_validate(with_link).facts().recording_url == "https://rec.airudder.com/a.wav"
    assert WorkflowDialerPush.model_validate(odd_link).facts().recording_url is None


def test_dialer_unknown_format_falls_back_to_task() -> None:
    facts = WorkflowDialerPush.model_validate(dialer("QueueStatus", taskId="t1")).facts()
    assert (facts.entity_kind, facts.entity_id) == ("DTASK", "t1")


@pytest.mark.parametrize(
    ("body", "entity", "unreadable"),
    [
        ({"workflow_id": "wf1"}, ("WORKFLOW", "wf1"), ("type", "call_id")),  # no pds
        ({"pds": "ContactStatus"}, ("DELIVERY", None), ("pds", "type", "call_id")),  # pds not an object
        ({"pds": {"type": "", "body": {"taskId": "t1"}}}, ("DTASK", "t1"), ("type", "call_id")),  # empty type
        ({"pds": {"type": "ContactStatus", "body": []}}, ("DELIVERY", None), ("body", "call_id")),  # body not an object
    ],
)
def test_dialer_shape_errors_are_read_as_far_as_they_go(
    body: dict[str, Any], entity: tuple[str, str | None], unreadable: tuple[str, ...]
) -> None:
    facts = read_facts(WorkflowDialerPush, body)
    assert (facts.entity_kind, facts.entity_id) == entity
    assert facts.unreadable == unreadable


def test_dialer_without_any_identifier() -> None:
    with pytest.raises(IdentifierMissing):
        WorkflowDialerPush.model_validate({"pds": {"type": "ContactStatus", "body": {"state": "x"}}}).facts()


def test_call_completion_callee_as_object_or_text() -> None:
    as_text = WorkflowCallCompleted.model_validate({"callid": "c1", "callee": "+6281234567890", "end_time": 1})
    as_object = WorkflowCallCompleted.model_validate({"call_id": "c1", "callee": {"callee_number": "+62811"}})
    assert as_text.facts().phone == "+6281234567890"
    assert as_object.facts().phone == "+62811"
    assert as_text.facts().event_time == 1


def test_call_completion_needs_a_call_or_case() -> None:
    by_case = WorkflowCallCompleted.model_validate({"case_id": "k1"}).facts()
    assert (by_case.entity_kind, by_case.entity_id) == ("CASE", "k1")
    with pytest.raises(IdentifierMissing):
        WorkflowCallCompleted.model_validate({"workflow_id": "w"}).facts()


def test_custom_api_push_reads_the_callee_object() -> None:
    body = {
        "workflow_id": "w1",
        "node_id": "n1",
        "callee": {"case_id": "k1", "callee_name": "A. Person", "callee_number": "+62811"},
    }
    facts = WorkflowCustomApiPush.model_validate(body).facts()
    assert (facts.entity_kind, facts.entity_id, facts.phone) == ("CASE", "k1", "+62811")
    plain = WorkflowCustomApiPush.model_validate({"workflow_id": "w1", "callee": "+62811"}).facts()
    assert (plain.entity_kind, plain.phone) == ("WORKFLOW", "+62811")


def test_custom_api_push_without_workflow_or_callee_is_filed_under_itself() -> None:
    # Both are documented as required; a push without them is still kept, with what it does name.
    facts = read_facts(WorkflowCustomApiPush, {"node_id": "n1"})
    assert (facts.entity_kind, facts.entity_id, facts.nodetask_id, facts.unreadable) == (
        "DELIVERY",
        None,
        "n1",
        ("case_id",),
    )
    by_workflow = read_facts(WorkflowCustomApiPush, {"workflow_id": "w1", "callee": ["+62811"]})
    assert (by_workflow.entity_kind, by_workflow.entity_id, by_workflow.unreadable) == (
        "WORKFLOW",
        "w1",
        ("callee", "case_id"),
    )


def test_list_completion_and_status_change() -> None:
    listed = WorkflowListCompleted.model_validate(
        {"workflow_id": "w1", "case_id": "k1", "callee_number": "+62811", "rows": [{"nodetask_id": "n1"}]}
    ).facts()
    assert (listed.entity_kind, listed.entity_id, listed.status) == ("CASE", "k1", "list_completed")
    status = WorkflowStatusChanged.model_validate({"workflow_id": "w1", "status": "finished", "actions": []}).facts()
    assert (status.entity_kind, status.entity_id, status.status) == ("WORKFLOW", "w1", "finished")
    no_status = read_facts(WorkflowStatusChanged, {"workflow_id": "w1"})
    assert (no_status.entity_kind, no_status.entity_id, no_status.status, no_status.unreadable) == (
        "WORKFLOW",
        "w1",
        None,
        (),
    )
    no_case = read_facts(WorkflowListCompleted, {"workflow_id": "w1", "callee_number": "+62811"})
    assert (no_case.entity_kind, no_case.phone, no_case.unreadable) == ("WORKFLOW", "+62811", ("case_id",))


def test_waba_and_chatbot() -> None:
    waba = WorkflowWabaMessageStatus.model_validate({"msg_id": "m1", "status": "read", "timestamp": 5}).facts()
    assert (waba.entity_kind, waba.entity_id, waba.status) == ("MESSAGE", "m1", "read")
    chat = WorkflowChatbotSessionEnded.model_validate(
        {"call_id": "s1", "callee": "+62811", "timestamp": 1744699269, "status": "closed"}
    ).facts()
    assert (chat.entity_kind, chat.entity_id, chat.phone, chat.event_time) == ("SESSION", "s1", "+62811", 1744699269)


def test_routes_resolve_and_unknown_paths_do_not() -> None:
    assert model_for("/webhooks/workflow/dialer") is WorkflowDialerPush
    assert model_for("/webhooks/nowhere") is None
    assert model_for("/webhooks/{proxy+}", {"proxy": "a/b"}).webhook_type == "unknown"  # type: ignore[union-attr]


def test_path_param_routes_refuse_values_outside_their_map() -> None:
    route = ByPathParam("product", {"collection": WorkflowCallCompleted})
    assert route.pick({"product": "Collection"}) is WorkflowCallCompleted
    assert route.pick({"product": "other"}) is None
    assert route.pick({}) is None


def test_every_model_has_a_distinct_type_name() -> None:
    names = [model.webhook_type for model in all_models()]
    assert len(names) == len(set(names))
    assert len(ROUTES) >= 9


# --- reading any JSON object -------------------------------------------------------------------------

HOSTILE = [
    "abc",
    float("inf"),
    float("-inf"),
    float("nan"),
    10**400,
    -1e17,
    1.5,
    True,
    False,
    {"a": 1},
    [1, 2],
    "",
    None,
    "9" * 5000,
]


def _cannot_be_text(value: Any) -> bool:
    return isinstance(value, bool | dict | list) or (isinstance(value, float) and not math.isfinite(value))


def _cannot_be_whole(value: Any) -> bool:
    if _cannot_be_text(value) or (isinstance(value, float) and not value.is_integer()):
        return True
    return isinstance(value, str) and (value == "abc" or len(value) > 4300)


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
@pytest.mark.parametrize(
    ("key", "name", "unreadable_if"),
    [
        ("callid", "call_id", _cannot_be_text),
        ("taskId", "task_id", _cannot_be_text),
        ("State", "state", _cannot_be_text),
        # The agent is what an AgentStatus push is about: absent, it is named too.
        ("agentName", "agent", lambda v: _cannot_be_text(v) or v in ("", None)),
        ("recLink", "rec_link", _cannot_be_text),
        # An object without a number in it is no number, rather than an unreadable one.
        ("phoneNumber", "phone", lambda v: _cannot_be_text(v) and not isinstance(v, dict)),
        ("hangupReason", "hangup_reason", _cannot_be_whole),
    ],
)
def test_a_value_a_field_cannot_take_is_named_and_the_rest_is_read(
    key: str, name: str, unreadable_if: Any, value: Any
) -> None:
    fields = {"callid": "c1", "taskId": "t1", "agentName": "a1", "mainNumber": "+62811", key: value}
    body = dialer("AgentStatus", **fields)
    before = repr(body)
    facts = read_facts(WorkflowDialerPush, body)
    assert (name in facts.unreadable) == unreadable_if(value), facts.unreadable
    assert facts.workflow_id == "wf1" and facts.entity_kind in ("AGENT", "CALL", "DTASK")
    assert repr(body) == before  # the body itself is never changed (repr: nan != nan)


@pytest.mark.parametrize("model", all_models(), ids=lambda m: m.webhook_type)
@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_every_model_reads_any_value_under_any_key_it_knows(model: Any, value: Any) -> None:
    keys = {k for info in model.model_fields.values() for k in _spellings(info)}
    facts = read_facts(model, {key: value for key in keys})
    assert facts.entity_kind  # filed somewhere, never an exception


def _spellings(info: Any) -> list[str]:
    spelled = info.validation_alias
    return list(getattr(spelled, "choices", [])) if spelled is not None else []


def test_unreadable_values_are_named_by_their_field() -> None:
    body = dialer("ContactStatus", callid="c1", taskId=["t1"], hangupReason="eight", phoneNumber={"x": 1})
    facts = read_facts(WorkflowDialerPush, body)
    assert (facts.entity_kind, facts.entity_id) == ("CALL", "c1")
    assert set(facts.unreadable) == {"task_id", "hangup_reason"}  # an object without a number is no number
    assert facts.phone is None and facts.task_id is None


def test_a_missing_primary_id_falls_back_and_is_named() -> None:
    facts = read_facts(WorkflowCallCompleted, {"case_id": "k1", "callee": "+62811", "workflow_id": "w1"})
    assert (facts.entity_kind, facts.entity_id, facts.unreadable) == ("CASE", "k1", ("call_id",))
    nothing = read_facts(WorkflowCallCompleted, {"callee": "+62811", "workflow_id": "w1", "task_id": "t1"})
    assert (nothing.entity_kind, nothing.entity_id, nothing.unreadable) == ("DELIVERY", None, ("call_id",))
    # The other identifiers stay, so that phone, case and workflow lookups still find the event.
    assert (nothing.phone, nothing.workflow_id, nothing.task_id) == ("+62811", "w1", "t1")


def test_read_facts_agrees_with_the_model_on_a_readable_body() -> None:
    body = dialer("ContactStatus", callid="c1", taskId="t1", state="RINGING", timestamp="1668998317236")
    assert read_facts(WorkflowDialerPush, body) == WorkflowDialerPush.model_validate(body).facts()


# --- third-party bodies ([3P], examples/workflow/*.3p.json) ----------------------------------------------

EVENTS = Path(__file__).resolve().parents[3] / "events"


def test_agent_status_3p_push_reads_agent_call_phone_and_results() -> None:
    body = json.loads((EVENTS / "workflow" / "dialer" / "agent-status.3p.json").read_text())
    facts = read_facts(WorkflowDialerPush, body)
    assert (facts.entity_kind, facts.entity_id, facts.agent) == ("AGENT", "Julodemo1001", "Julodemo1001")
    assert (facts.status, facts.call_id, facts.task_id) == (
        "HANGUP",
        "ec72fb62040142b4a84c2c4abf5da542",
        "0eb6512129694be4a31440321ee7ee9f",
    )
    assert facts.phone == "+6281288893327" and facts.event_time == "1695091377922"
    assert facts.results == {"talkResult": "WA", "Level1": "WA", "Level2": "WAText"}
    assert facts.unreadable == ()
    # `phoneNumber` may be "" while `mainNumber` holds the number.
    body["pds"]["body"].update(phoneNumber="", mainNumber="+6281200000001")
    assert read_facts(WorkflowDialerPush, body).phone == "+6281200000001"


def test_pds_call_record_3p_reads_call_time_phone_recording_and_results() -> None:
    record = json.loads((EVENTS / "workflow" / "call" / "pds-call-record.3p.json").read_text())
    facts = read_facts(WorkflowCallCompleted, record)
    assert (facts.entity_kind, facts.entity_id) == ("CALL", "194bcf580650401bb8637ebff48b65f9")
    assert (facts.event_time, facts.status, facts.phone) == ("2023-11-09T10:44:19Z", "NoAnswered", "+628989785585")
    assert (facts.task_id, facts.recording_url, facts.agent, facts.results) == (
        "57bf2049f77e4285b1db2e1fc9391267",
        None,
        None,
        {},
    )
    link = "https://pcc.airudder.com/download/20250110/65fc9b02daa44bef90c0fa5733614b8d/f986c1222c204c11abddd2c3feb84ba9.wav"
    record.update(reclink=link, phoneNumber="", agentName="agent7")
    record["customizeResults"][0]["value"] = "RPC-PTP"
    facts = read_facts(WorkflowCallCompleted, record)
    assert (facts.recording_url, facts.phone, facts.agent) == (link, "+628989785585", "agent7")
    assert facts.results == {"Level1": "RPC-PTP"}


def test_a_recording_link_under_either_spelling() -> None:
    for key in ("recLink", "reclink"):
        facts = read_facts(WorkflowDialerPush, dialer("ContactStatus", callid="c1", **{key: "https://r.example/a.wav"}))
        assert facts.recording_url == "https://r.example/a.wav"


def test_custom_results_in_either_shape() -> None:
    as_object = {"Level1": "WA", "Level2": "", "PTP Amount": 5000}
    as_list = [{"title": "Level1", "groupName": "", "value": "WA"}, {"title": "PTP Amount", "value": 5000}, "odd"]
    for shape in (as_object, as_list):
        facts = read_facts(WorkflowDialerPush, dialer("AgentStatus", agentName="a1", customizeResults=shape))
        assert facts.results == {"Level1": "WA", "PTP Amount": "5000"}


def test_null_for_a_nested_object_reads_as_absent() -> None:
    envelope_only = read_facts(WorkflowDialerPush, {"workflow_id": "w1", "pds": None})
    assert (envelope_only.entity_kind, envelope_only.unreadable) == ("WORKFLOW", ("type", "call_id"))
    no_body = read_facts(WorkflowDialerPush, {"workflow_id": "w1", "pds": {"type": "TaskStatus", "body": None}})
    assert (no_body.entity_kind, no_body.unreadable) == ("WORKFLOW", ("task_id",))
    no_callee = read_facts(WorkflowCustomApiPush, {"workflow_id": "w1", "callee": None})
    assert (no_callee.entity_kind, no_callee.unreadable) == ("WORKFLOW", ("case_id",))
