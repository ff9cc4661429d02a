"""Workflow webhooks (../shared/airudder-api/workflow.md).

Only the dialer contact-status body is fully documented; the others follow the reference's field
tables, and fields it does not list are looked for under every spelling AIRUDDER uses elsewhere.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from airudder_ingest.models.base import EventFacts, Int, NullAsEmpty, Phone, Text, WebhookModel, alias, file_under
from airudder_ingest.models.calls import (
    CUSTOM_RESULTS,
    MAIN_NUMBER,
    TALK_RESULT,
    CallFields,
    InfoCheckCallFields,
    call_outcome,
)
from airudder_ingest.models.spellings import AGENT, CALL_ID, CASE_ID, RECORDING, TASK_ID


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=True, defer_build=True)


class WorkflowLinks(TypedDict):
    workflow_id: str | None
    nodetask_id: str | None


class _WorkflowFields(WebhookModel):
    workflow_id: Text = None
    workflow_name: Text = None
    nodetask_id: Text = None
    nodetask_name: Text = None

    def _links(self) -> WorkflowLinks:
        """The ids a workflow callback's facts carry whatever it is filed under: its workflow and node task."""
        return {"workflow_id": self.workflow_id, "nodetask_id": self.nodetask_id}


# --- Predictive dialer (one URL, three formats) ---------------------------------------------------


class DialerBody(_Tolerant):
    task_id: Text = alias(*TASK_ID)
    task_name: Text = alias("taskName", "task_name")
    group_name: Text = alias("groupName", "group_name")
    # AgentStatus pushes spell it `State`.
    state: Text = alias("state", "State", "status", "Status")
    # AgentStatus pushes may leave `phoneNumber` "" and hold the number in `mainNumber` [3P].
    phone: Phone = alias("phoneNumber", "phone_number", "callee")
    main_number: Phone = alias(*MAIN_NUMBER)
    call_id: Text = alias(*CALL_ID)
    agent: Text = alias(*AGENT)
    hangup_reason: Int = alias("hangupReason", "hangup_reason")
    timestamp: Any = alias("timestamp", "Timestamp", "time")
    rec_link: Text = alias(*RECORDING)
    # The agent's disposition [3P]: `talkResultLabel`, and `customizeResults` as an object.
    talk_result: Text = alias(*TALK_RESULT)
    custom_results: Any = alias(*CUSTOM_RESULTS)


class DialerEnvelope(_Tolerant):
    type: Text = None  # TaskStatus, ContactStatus, AgentStatus; others are kept
    body: Annotated[DialerBody, NullAsEmpty] = Field(default_factory=DialerBody)


class WorkflowDialerPush(_WorkflowFields):
    """Webhooks of the Info of Predictive Dialer System: TaskStatus, ContactStatus, AgentStatus.

    Filed by `pds.type`: an agent push under the agent, a task push under the dialer task, anything
    else under the call; each falls back to the task, then the workflow.
    """

    webhook_type = "workflow.dialer"
    title = "Webhook of Predictive Dialer Task/Contacts/Agents Status Changes"

    pds: Annotated[DialerEnvelope, NullAsEmpty] = Field(default_factory=DialerEnvelope)

    def facts(self) -> EventFacts:
        kind, body = self.pds.type, self.pds.body
        agent, call = ("AGENT", "agent", body.agent), ("CALL", "call_id", body.call_id)
        task = ("DTASK", "task_id", body.task_id)
        workflow = ("WORKFLOW", "workflow_id", self.workflow_id)
        chain = {"AgentStatus": (agent, call, task, workflow), "TaskStatus": (task, workflow)}.get(
            kind or "", (call, task, workflow)
        )
        return file_under(
            *chain,
            # `pds.type` is documented as required: without it, the push is filed as a contact push.
            unreadable=() if kind else ("type",),
            event_time=body.timestamp,
            status=body.state,
            phone=body.phone or body.main_number,
            **self._links(),
            task_id=body.task_id,
            call_id=body.call_id,
            **call_outcome(body.rec_link, body.agent, body.talk_result, body.custom_results),
        )


# --- Call completion --------------------------------------------------------------------------------


class WorkflowCallCompleted(_WorkflowFields, CallFields):
    """Notification of Call Completion in Workflow (Debt Collection/Marketing/E-commerce).

    Body not recovered from the docs: the call fields (shared with the campaign "Webhook of Call",
    see calls.py) are looked for under AIRUDDER's known spellings.
    """

    webhook_type = "workflow.call"
    title = "Notification of Call Completion in Workflow (Debt Collection/Marketing/E-commerce)"

    def facts(self) -> EventFacts:
        return self.call_facts(**self._links())


class WorkflowInfoCheckCallCompleted(WorkflowCallCompleted, InfoCheckCallFields):
    """Notification of Call Completion in Workflow (Info Check): a separate page with its own fields
    (not recovered; see InfoCheckCallFields); identified the same way."""

    webhook_type = "workflow.infocheck_call"
    title = "Notification of Call Completion in Workflow (Info Check)"


# --- Custom API node ----------------------------------------------------------------------------------


class CustomApiCallee(_Tolerant):
    case_id: Text = alias(*CASE_ID)
    callee_name: Text = None
    callee_gender: Text = None
    callee_number: Phone = alias("callee_number", "phone_number", "callee")
    platform_name: Text = None
    extra_a: Text = None


class WorkflowCustomApiPush(WebhookModel):
    """Custom API Node Data Push. Filed under its case, else its workflow."""

    webhook_type = "workflow.custom_api"
    title = "Custom API Node Data Push"

    workflow_id: Text = None
    workflow_name: Text = None
    node_id: Text = None
    node_name: Text = None
    callee: Annotated[CustomApiCallee, NullAsEmpty] = Field(default_factory=CustomApiCallee)
    timestamp: Any = alias("timestamp", "push_time", "update_time")

    @model_validator(mode="before")
    @classmethod
    def _callee_as_text(cls, data: Any) -> Any:
        # Elsewhere `callee` is a plain number: accept that shape too.
        callee = data.get("callee") if isinstance(data, dict) else None
        if isinstance(callee, str | int) and not isinstance(callee, bool):
            data = {**data, "callee": {"callee_number": data["callee"]}}
        return data

    def facts(self) -> EventFacts:
        case_id = self.callee.case_id
        return file_under(
            ("CASE", "case_id", case_id),
            ("WORKFLOW", "workflow_id", self.workflow_id),
            event_time=self.timestamp,
            phone=self.callee.callee_number,
            case_id=case_id,
            workflow_id=self.workflow_id,
            nodetask_id=self.node_id,
        )


# --- Workflow list and status --------------------------------------------------------------------------


class NodeTaskRow(_Tolerant):
    nodetask_id: Text = None
    nodetask_name: Text = None
    node_type: Text = None
    task_id: Text = alias(*TASK_ID)
    task_status: Text = None


class WorkflowListCompleted(WebhookModel):
    """Notification for Workflow List Completion: one list entry (case) finished the workflow.
    Filed under its case, else its workflow."""

    webhook_type = "workflow.list_completed"
    title = "Notification for Workflow List Completion"

    workflow_id: Text = None
    workflow_name: Text = None
    case_id: Text = alias(*CASE_ID)
    callee_number: Phone = alias("callee_number", "callee", "phone_number")
    rows: list[NodeTaskRow] = Field(default_factory=list)
    timestamp: Any = alias("timestamp", "finish_time", "end_time", "update_time")

    def facts(self) -> EventFacts:
        return file_under(
            ("CASE", "case_id", self.case_id),
            ("WORKFLOW", "workflow_id", self.workflow_id),
            event_time=self.timestamp,
            status="list_completed",
            phone=self.callee_number,
            case_id=self.case_id,
            workflow_id=self.workflow_id,
        )


class WorkflowStatusChanged(WebhookModel):
    """Notification of Workflow Status Change."""

    webhook_type = "workflow.status_changed"
    title = "Notification of Workflow Status Change"

    workflow_id: Text = None
    workflow_name: Text = None
    status: Text = None
    actions: list[NodeTaskRow] = Field(default_factory=list)
    timestamp: Any = alias("timestamp", "update_time", "updated_at", "change_time")

    def facts(self) -> EventFacts:
        return file_under(
            ("WORKFLOW", "workflow_id", self.workflow_id),
            event_time=self.timestamp,
            status=self.status,
            workflow_id=self.workflow_id,
        )


# --- WABA and chatbot ---------------------------------------------------------------------------------


class WorkflowWabaMessageStatus(_WorkflowFields):
    """Notification of WABA Message Status Alteration in Workflow (body not recovered). Filed under
    its message, else its WABA send task, else its conversation (`call_id`, as in §28)."""

    webhook_type = "workflow.waba_message_status"
    title = "Notification of WABA Message Status Alteration in Workflow"

    waba_task_id: Text = alias("waba_task_id", "wabaTaskId")
    wfdetail_uuid: Text = None
    message_id: Text = alias("msg_id", "message_id", "messageId", "msgId", "wamid")
    status: Text = alias("status", "message_status", "msg_status")
    timestamp: Any = alias("timestamp", "status_time", "update_time")
    callee: Phone = alias("callee", "callee_number", "phone_number")
    call_id: Text = alias(*CALL_ID)

    def facts(self) -> EventFacts:
        return file_under(
            ("MESSAGE", "message_id", self.message_id),
            ("WABATASK", "waba_task_id", self.waba_task_id),
            ("SESSION", "session_id", self.call_id),
            event_time=self.timestamp,
            status=self.status,
            phone=self.callee,
            **self._links(),
            task_id=self.waba_task_id,
            call_id=self.call_id,
        )


class WorkflowChatbotSessionEnded(_WorkflowFields):
    """Chatbot Session End Notification in Workflow."""

    webhook_type = "workflow.chatbot_session_ended"
    title = "Chatbot Session End Notification in Workflow"

    waba_task_id: Text = None
    wfdetail_uuid: Text = None
    timestamp: Any = alias("timestamp", "session_end_time")
    channel: Text = None
    channel_id: Text = None
    callee: Phone = None
    call_id: Text = alias(*CALL_ID)
    status: Text = None
    messages: Any = None

    def facts(self) -> EventFacts:
        return file_under(
            ("SESSION", "call_id", self.call_id),  # §28: `call_id` is the session
            ("SESSION", "wfdetail_uuid", self.wfdetail_uuid),
            event_time=self.timestamp,
            status=self.status or "ended",
            phone=self.callee,
            **self._links(),
            task_id=self.waba_task_id,
            call_id=self.call_id,
        )
