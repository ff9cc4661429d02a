"""Campaign product models (Collection, Telemarketing & E-commerce, Info Check): the samples, the
spellings, and the {product} path segment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airudder_ingest.models import ROUTES, ByPathParam, IdentifierMissing, WebhookModel, model_for, read_facts
from airudder_ingest.models.calls import CallFields, InfoCheckCallFields
from airudder_ingest.models.campaigns import (
    CollectionCallCompleted,
    CollectionPlanFinished,
    CollectionTaskFinished,
    InfoCheckCallCompleted,
    InfoCheckPlanFinished,
    InfoCheckTaskFinished,
    TelemarketingCallCompleted,
    TelemarketingPlanFinished,
    TelemarketingTaskFinished,
)
from airudder_ingest.models.workflow import WorkflowCallCompleted, WorkflowInfoCheckCallCompleted

EVENTS = Path(__file__).resolve().parents[3] / "events"


def sample(relative: str) -> Any:
    return json.loads((EVENTS / relative).read_text())


def parsed(product: str, kind: str, file: str) -> Any:
    model = model_for(f"/webhooks/{{product}}/{kind}", {"product": product})
    assert model is not None
    return model.model_validate(sample(f"{product}/{kind}/{file}"))


# ------------------------------------------------------------------------------------------ routing


@pytest.mark.parametrize(
    ("product", "kind", "model"),
    [
        ("collection", "plan", CollectionPlanFinished),
        ("collection", "task", CollectionTaskFinished),
        ("collection", "call", CollectionCallCompleted),
        ("telemarketing", "plan", TelemarketingPlanFinished),
        ("telemarketing", "task", TelemarketingTaskFinished),
        ("telemarketing", "call", TelemarketingCallCompleted),
        ("infocheck", "plan", InfoCheckPlanFinished),
        ("infocheck", "task", InfoCheckTaskFinished),
        ("infocheck", "call", InfoCheckCallCompleted),
    ],
)
def test_the_product_segment_picks_the_model_and_names_the_type(
    product: str, kind: str, model: type[WebhookModel]
) -> None:
    route = f"/webhooks/{{product}}/{kind}"
    assert isinstance(ROUTES[route], ByPathParam)
    assert model_for(route, {"product": product}) is model
    assert model_for(route, {"product": product.upper()}) is model  # the segment is read case-insensitively
    assert model.webhook_type == f"{product}.{kind}"


@pytest.mark.parametrize("product", ["workflow", "leadgen", "chatbot", "sms", "collection2", ""])
def test_any_other_product_segment_has_no_model(product: str) -> None:
    for kind in ("plan", "task", "call"):
        assert model_for(f"/webhooks/{{product}}/{kind}", {"product": product}) is None
    assert model_for("/webhooks/{product}/call", {}) is None


# ------------------------------------------------------------------------------------------ samples


@pytest.mark.parametrize(
    ("product", "plan_id", "status", "time"),
    [
        ("collection", "6c9d020c25", "finished", "2025-04-16 17:42:10"),
        ("telemarketing", "40ecd79772", "Finished", "2025-04-16T10:15:03Z"),
        ("infocheck", "ed0e888c39", "finished", 1744801200),
    ],
)
def test_plan_samples_file_under_the_plan(product: str, plan_id: str, status: str, time: Any) -> None:
    facts = parsed(product, "plan", "finished.json").facts()
    assert facts.entity_kind == "PLAN"
    assert facts.entity_id is not None and facts.entity_id.startswith(plan_id)
    assert (facts.status, facts.event_time) == (status, time)
    assert (facts.call_id, facts.task_id, facts.phone) == (None, None, None)


@pytest.mark.parametrize(
    ("product", "task_id", "plan_id", "round_no", "status", "time"),
    [
        ("collection", "7f5370c5c2", "6c9d020c25", 2, "finished", "2025-04-16 17:41:55"),
        ("telemarketing", "323b7088d6", "40ecd79772", 1, "Finished", "2025-04-16T10:14:47Z"),
        ("infocheck", "67140280a3", "ed0e888c39", 1, "finished", 1744801188),
    ],
)
def test_task_samples_file_under_the_campaign_task(
    product: str, task_id: str, plan_id: str, round_no: int, status: str, time: Any
) -> None:
    model = parsed(product, "task", "finished.json")
    facts = model.facts()
    assert facts.entity_kind == "TASK"  # not DTASK: the dialer's tasks are another id space
    assert facts.entity_id == facts.task_id and facts.task_id is not None and facts.task_id.startswith(task_id)
    assert (facts.status, facts.event_time) == (status, time)
    assert model.plan_id.startswith(plan_id) and model.round == round_no


def test_collection_call_sample() -> None:
    facts = parsed("collection", "call", "completed.json").facts()
    assert (facts.entity_kind, facts.entity_id) == ("CALL", "54698a921601411115674d70d5144f80")
    assert facts.call_id == facts.entity_id
    assert facts.task_id == "7f5370c5c27362e3bbaaf95836c5b3e6"
    assert (facts.case_id, facts.phone, facts.status) == ("coll-case-20250416-007", "+6281277778888", "answered")
    assert facts.event_time == "2025-04-16 13:06:40"  # end_time, not start_time
    assert facts.recording_url is not None and facts.recording_url.endswith(f"{facts.call_id}.wav")
    assert facts.workflow_id is None


def test_telemarketing_call_sample_in_pascal_case() -> None:
    model = parsed("telemarketing", "call", "completed.json")
    facts = model.facts()
    assert (facts.entity_kind, facts.entity_id) == ("CALL", "b57328945ffa6da54fe8977cda455c45")
    assert facts.task_id == "323b7088d6ddbbd550dd8a0ad09e3c90"
    assert (facts.phone, facts.status) == ("+6281344445555", "Talked")
    assert facts.event_time == "2025-04-16T09:21:58Z"
    assert facts.recording_url is not None and facts.recording_url.startswith("https://")
    assert model.plan_id == "40ecd797727506d1f23b18f66a3921b2"
    assert model.model_extra == {"StartTime": "2025-04-16T09:20:31Z", "TalkDuration": 81, "Intention": "A"}


def test_infocheck_call_sample_has_its_own_fields() -> None:
    model = parsed("infocheck", "call", "completed.json")
    facts = model.facts()
    assert isinstance(model, InfoCheckCallFields)
    assert (facts.entity_kind, facts.phone, facts.case_id) == ("CALL", "+6281366667777", "kyc-case-20250416-031")
    assert facts.event_time == 1744797722 and facts.recording_url is None
    assert model.verification_result == "fail"
    assert [a["verified"] for a in model.answers] == [True, False]


# ------------------------------------------------------------------------------------------ shared call vocabulary


def test_the_call_vocabulary_is_one_base_shared_with_the_workflow_models() -> None:
    for model in (CollectionCallCompleted, TelemarketingCallCompleted, InfoCheckCallCompleted, WorkflowCallCompleted):
        assert issubclass(model, CallFields)
    assert issubclass(InfoCheckCallCompleted, InfoCheckCallFields)
    assert issubclass(WorkflowInfoCheckCallCompleted, InfoCheckCallFields)
    assert not issubclass(CollectionCallCompleted, InfoCheckCallFields)
    # Info Check is its own format: its distinct fields are modelled only there
    assert "verification_result" in InfoCheckCallCompleted.model_fields
    assert "verification_result" not in CollectionCallCompleted.model_fields


@pytest.mark.parametrize(
    "body",
    [
        {"call_id": "c1", "task_id": "t1", "callee": "+62811", "status": "answered", "end_time": 5},
        {"callid": "c1", "taskId": "t1", "Callee": "+62811", "CallStatus": "answered", "EndTime": 5},
        {"CallID": "c1", "TaskID": "t1", "CalleeNumber": 62811, "State": "answered", "timestamp": 5},
        {
            "callId": "c1",
            "taskid": "t1",
            "callee": {"callee_number": "+62811"},
            "call_status": "answered",
            "endTime": 5,
        },
    ],
)
def test_call_spellings_give_the_same_facts(body: dict[str, Any]) -> None:
    facts = CollectionCallCompleted.model_validate(body).facts()
    assert (facts.entity_kind, facts.entity_id, facts.task_id, facts.status, facts.event_time) == (
        "CALL",
        "c1",
        "t1",
        "answered",
        5,
    )
    assert facts.phone in ("+62811", "62811")


def test_a_call_without_call_id_files_under_its_case_and_without_either_is_refused() -> None:
    facts = TelemarketingCallCompleted.model_validate({"CaseID": "k9", "TaskID": "t1"}).facts()
    assert (facts.entity_kind, facts.entity_id) == ("CASE", "k9")
    with pytest.raises(IdentifierMissing):
        TelemarketingCallCompleted.model_validate({"TaskID": "t1", "Callee": "+62811"}).facts()
    # What the ingest path stores: the call under itself, its call id named as unreadable.
    kept = read_facts(TelemarketingCallCompleted, {"TaskID": "t1", "Callee": "+62811"})
    assert (kept.entity_kind, kept.task_id, kept.phone, kept.unreadable) == ("DELIVERY", "t1", "+62811", ("call_id",))


def test_plan_and_task_need_their_id() -> None:
    with pytest.raises(IdentifierMissing):
        CollectionPlanFinished.model_validate({"status": "finished"}).facts()
    with pytest.raises(IdentifierMissing):
        InfoCheckTaskFinished.model_validate({"plan_id": "p1", "status": "finished"}).facts()
    plan = TelemarketingPlanFinished.model_validate({"planId": 1234, "PlanStatus": "Cancelled"}).facts()
    assert (plan.entity_kind, plan.entity_id, plan.status) == ("PLAN", "1234", "Cancelled")
    task = CollectionTaskFinished.model_validate({"taskID": "t7", "Round": "third", "task_status": "stopped"})
    assert (task.facts().entity_id, task.round, task.facts().status) == ("t7", "third", "stopped")
