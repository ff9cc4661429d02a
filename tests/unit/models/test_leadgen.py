"""Lead-generation models: the Workflow twins under their own webhook types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airudder_ingest.base.events import event_id
from airudder_ingest.models import WebhookModel, model_for
from airudder_ingest.models.leadgen import LeadgenCallCompleted, LeadgenCustomApiPush, LeadgenDialerPush
from airudder_ingest.models.workflow import WorkflowCallCompleted, WorkflowCustomApiPush, WorkflowDialerPush

EVENTS = Path(__file__).resolve().parents[3] / "events"
WORKFLOW = "14b1f7"  # the lead-generation workflow all samples belong to (prefix)


def sample(relative: str) -> Any:
    return json.loads((EVENTS / relative).read_text())


@pytest.mark.parametrize(
    ("route", "model", "twin", "webhook_type"),
    [
        ("/webhooks/leadgen/dialer", LeadgenDialerPush, WorkflowDialerPush, "leadgen.dialer"),
        ("/webhooks/leadgen/call", LeadgenCallCompleted, WorkflowCallCompleted, "leadgen.call"),
        ("/webhooks/leadgen/custom-api", LeadgenCustomApiPush, WorkflowCustomApiPush, "leadgen.custom_api"),
    ],
)
def test_each_route_is_its_workflow_twin_with_its_own_type(
    route: str, model: type[WebhookModel], twin: type[WebhookModel], webhook_type: str
) -> None:
    assert model_for(route) is model
    assert issubclass(model, twin)
    assert model.webhook_type == webhook_type != twin.webhook_type
    assert model.model_fields.keys() == twin.model_fields.keys()  # same payload, nothing added


@pytest.mark.parametrize(
    ("file", "model", "twin"),
    [
        ("leadgen/dialer/contact-status.json", LeadgenDialerPush, WorkflowDialerPush),
        ("leadgen/dialer/task-status.json", LeadgenDialerPush, WorkflowDialerPush),
        ("leadgen/call/completed.json", LeadgenCallCompleted, WorkflowCallCompleted),
        ("leadgen/custom-api/push.json", LeadgenCustomApiPush, WorkflowCustomApiPush),
    ],
)
def test_same_body_same_facts_but_a_distinct_event(file: str, model: Any, twin: Any) -> None:
    body = sample(file)
    assert model.model_validate(body).facts() == twin.model_validate(body).facts()
    # The event id includes the type: the stored event records that lead generation sent it.
    assert event_id(model.webhook_type, body) != event_id(twin.webhook_type, body)


def test_dialer_samples() -> None:
    contact = LeadgenDialerPush.model_validate(sample("leadgen/dialer/contact-status.json")).facts()
    assert (contact.entity_kind, contact.entity_id) == ("CALL", "aa3d2748e14e12408e7d6ddba1fea2e8")
    assert (contact.status, contact.phone, contact.event_time) == ("HANGUP", "+6281388889999", "1744794912000")
    assert contact.recording_url is not None and contact.workflow_id is not None
    assert contact.workflow_id.startswith(WORKFLOW)
    task = LeadgenDialerPush.model_validate(sample("leadgen/dialer/task-status.json")).facts()
    assert (task.entity_kind, task.entity_id, task.status) == ("DTASK", contact.task_id, "Finished")


def test_call_and_custom_api_samples_meet_on_the_case() -> None:
    call = LeadgenCallCompleted.model_validate(sample("leadgen/call/completed.json")).facts()
    push = LeadgenCustomApiPush.model_validate(sample("leadgen/custom-api/push.json")).facts()
    assert call.entity_kind == "CALL" and call.call_id == call.entity_id
    assert (call.status, call.event_time, call.phone) == ("answered", "2025-04-16 09:03:30", "+6281322223333")
    assert (push.entity_kind, push.entity_id) == ("CASE", "lead-20250416-0042")
    assert call.case_id == push.case_id and call.phone == push.phone and call.workflow_id == push.workflow_id
