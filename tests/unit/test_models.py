"""Workflow models: tolerant parsing and the facts each one files an event under."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from airudder_ingest.models import (
    ROUTES,
    ByPathParam,
    IdentifierMissing,
    all_models,
    model_for,
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

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "airudder-api" / "examples" / "workflow"


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
    "body",
    [
        {"workflow_id": "wf1"},  # no pds
        {"pds": "ContactStatus"},  # pds not an object
        {"pds": {"type": "", "body": {}}},  # empty type
        {"pds": {"type": "ContactStatus", "body": []}},  # body not an object
    ],
)
def test_dialer_shape_errors_are_validation_errors(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WorkflowDialerPush.model_validate(body)


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


def test_custom_api_push_requires_workflow_and_callee() -> None:
    with pytest.raises(ValidationError) as caught:
        WorkflowCustomApiPush.model_validate({"node_id": "n1"})
    fields = {err["loc"][0] for err in caught.value.errors()}
    assert fields == {"workflow_id", "callee"}


def test_list_completion_and_status_change() -> None:
    listed = WorkflowListCompleted.model_validate(
        {"workflow_id": "w1", "case_id": "k1", "callee_number": "+62811", "rows": [{"nodetask_id": "n1"}]}
    ).facts()
    assert (listed.entity_kind, listed.entity_id, listed.status) == ("CASE", "k1", "list_completed")
    status = WorkflowStatusChanged.model_validate({"workflow_id": "w1", "status": "finished", "actions": []}).facts()
    assert (status.entity_kind, status.entity_id, status.status) == ("WORKFLOW", "w1", "finished")
    with pytest.raises(ValidationError):
        WorkflowStatusChanged.model_validate({"workflow_id": "w1"})


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
