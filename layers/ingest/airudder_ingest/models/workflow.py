"""Workflow webhooks (../shared/airudder-api/workflow.md).

Only the dialer contact-status body is fully documented; the others follow the reference's field
tables, and fields it does not list are looked for under every spelling AIRUDDER uses elsewhere.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .base import (
    CALL_ID,
    CASE_ID,
    RECORDING,
    TASK_ID,
    EventFacts,
    IdentifierMissing,
    Int,
    Text,
    WebhookModel,
    alias,
    first,
    http_link,
)
from .calls import CallFields, InfoCheckCallFields


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=True, defer_build=True)


class _WorkflowFields(WebhookModel):
    workflow_id: Text = None
    workflow_name: Text = None
    nodetask_id: Text = None
    nodetask_name: Text = None


# --- Predictive dialer (one URL, three formats) ---------------------------------------------------


class DialerBody(_Tolerant):
    task_id: Text = alias(*TASK_ID)
    task_name: Text = alias("taskName", "task_name")
    group_name: Text = alias("groupName", "group_name")
    # AgentStatus pushes spell it `State`.
    state: Text = alias("state", "State", "status", "Status")
    phone: Text = alias("phoneNumber", "mainNumber", "phone_number", "callee")
    call_id: Text = alias(*CALL_ID)
    agent: Text = alias("agentName", "agent_name", "agent", "agentId", "agent_id", "userName", "AgentName")
    hangup_reason: Int = alias("hangupReason", "hangup_reason")
    timestamp: Any = alias("timestamp", "Timestamp", "time")
    rec_link: Text = alias(*RECORDING)


class DialerEnvelope(_Tolerant):
    type: str = Field(min_length=1)
    body: DialerBody


class WorkflowDialerPush(_WorkflowFields):
    """Webhooks of the Info of Predictive Dialer System: TaskStatus, ContactStatus, AgentStatus."""

    webhook_type = "workflow.dialer"
    title = "Webhook of Predictive Dialer Task/Contacts/Agents Status Changes"

    pds: DialerEnvelope

    def facts(self) -> EventFacts:
        kind, body = self.pds.type, self.pds.body
        common = {
            "event_time": body.timestamp,
            "status": first(body.state),
            "phone": body.phone,
            "workflow_id": self.workflow_id,
            "nodetask_id": self.nodetask_id,
            "task_id": body.task_id,
            "call_id": body.call_id,
            "recording_url": http_link(body.rec_link),
        }
        if kind == "AgentStatus" and body.agent:
            return EventFacts("AGENT", body.agent, **common)
        if kind != "TaskStatus" and body.call_id:
            return EventFacts("CALL", body.call_id, **common)
        if body.task_id:
            return EventFacts("DTASK", body.task_id, **common)
        if self.workflow_id:
            return EventFacts("WORKFLOW", self.workflow_id, **common)
        raise IdentifierMissing("pds.body names no callid or taskId, and the push has no workflow_id")


# --- Call completion --------------------------------------------------------------------------------


class WorkflowCallCompleted(_WorkflowFields, CallFields):
    """Notification of Call Completion in Workflow (Debt Collection/Marketing/E-commerce).

    Body not recovered from the docs: the call fields (shared with the campaign "Webhook of Call",
    see calls.py) are looked for under AIRUDDER's known spellings.
    """

    webhook_type = "workflow.call"
    title = "Notification of Call Completion in Workflow (Debt Collection/Marketing/E-commerce)"

    def facts(self) -> EventFacts:
        return self.call_facts(workflow_id=self.workflow_id, nodetask_id=self.nodetask_id)


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
    callee_number: Text = alias("callee_number", "phone_number", "callee")
    platform_name: Text = None
    extra_a: Text = None


class WorkflowCustomApiPush(WebhookModel):
    """Custom API Node Data Push."""

    webhook_type = "workflow.custom_api"
    title = "Custom API Node Data Push"

    workflow_id: str = Field(min_length=1)
    workflow_name: Text = None
    node_id: Text = None
    node_name: Text = None
    callee: CustomApiCallee
    timestamp: Any = alias("timestamp", "push_time", "update_time")

    @model_validator(mode="before")
    @classmethod
    def _callee_as_text(cls, data: Any) -> Any:
        # Elsewhere `callee` is a plain number: accept that shape too.
        if isinstance(data, dict) and isinstance(data.get("callee"), str | int):
            data = {**data, "callee": {"callee_number": data["callee"]}}
        return data

    def facts(self) -> EventFacts:
        case_id = self.callee.case_id
        return EventFacts(
            "CASE" if case_id else "WORKFLOW",
            case_id or self.workflow_id,
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
    """Notification for Workflow List Completion: one list entry (case) finished the workflow."""

    webhook_type = "workflow.list_completed"
    title = "Notification for Workflow List Completion"

    workflow_id: str = Field(min_length=1)
    workflow_name: Text = None
    case_id: Text = alias(*CASE_ID)
    callee_number: Text = alias("callee_number", "callee", "phone_number")
    rows: list[NodeTaskRow] = Field(default_factory=list)
    timestamp: Any = alias("timestamp", "finish_time", "end_time", "update_time")

    def facts(self) -> EventFacts:
        if not self.case_id and not self.callee_number:
            raise IdentifierMissing("the list-completion notification names neither case_id nor callee_number")
        return EventFacts(
            "CASE" if self.case_id else "WORKFLOW",
            self.case_id or self.workflow_id,
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

    workflow_id: str = Field(min_length=1)
    workflow_name: Text = None
    status: str = Field(min_length=1)
    actions: list[NodeTaskRow] = Field(default_factory=list)
    timestamp: Any = alias("timestamp", "update_time", "updated_at", "change_time")

    def facts(self) -> EventFacts:
        return EventFacts(
            "WORKFLOW",
            self.workflow_id,
            event_time=self.timestamp,
            status=self.status,
            workflow_id=self.workflow_id,
        )


# --- WABA and chatbot ---------------------------------------------------------------------------------


class WorkflowWabaMessageStatus(_WorkflowFields):
    """Notification of WABA Message Status Alteration in Workflow (body not recovered)."""

    webhook_type = "workflow.waba_message_status"
    title = "Notification of WABA Message Status Alteration in Workflow"

    waba_task_id: Text = alias("waba_task_id", "wabaTaskId")
    wfdetail_uuid: Text = None
    msg_id: Text = alias("msg_id", "message_id", "messageId", "msgId", "wamid")
    status: Text = alias("status", "message_status", "msg_status")
    timestamp: Any = alias("timestamp", "status_time", "update_time")
    callee: Text = alias("callee", "callee_number", "phone_number")
    call_id: Text = alias(*CALL_ID)

    def facts(self) -> EventFacts:
        common = {
            "event_time": self.timestamp,
            "status": self.status,
            "phone": self.callee,
            "workflow_id": self.workflow_id,
            "nodetask_id": self.nodetask_id,
            "task_id": self.waba_task_id,
            "call_id": self.call_id,
        }
        if self.msg_id:
            return EventFacts("MESSAGE", self.msg_id, **common)
        if self.waba_task_id:
            return EventFacts("WABATASK", self.waba_task_id, **common)
        raise IdentifierMissing("the WABA status names neither a message id nor a waba_task_id")


class WorkflowChatbotSessionEnded(_WorkflowFields):
    """Chatbot Session End Notification in Workflow."""

    webhook_type = "workflow.chatbot_session_ended"
    title = "Chatbot Session End Notification in Workflow"

    waba_task_id: Text = None
    wfdetail_uuid: Text = None
    timestamp: Any = alias("timestamp", "session_end_time")
    channel: Text = None
    channel_id: Text = None
    callee: Text = None
    call_id: Text = alias(*CALL_ID)
    status: Text = None
    messages: list[Any] = Field(default_factory=list)

    def facts(self) -> EventFacts:
        session = first(self.call_id, self.wfdetail_uuid)
        if not session:
            raise IdentifierMissing("the session-end notification names neither call_id nor wfdetail_uuid")
        return EventFacts(
            "SESSION",
            session,
            event_time=self.timestamp,
            status=first(self.status, "ended"),
            phone=self.callee,
            workflow_id=self.workflow_id,
            nodetask_id=self.nodetask_id,
            task_id=self.waba_task_id,
            call_id=self.call_id,
        )
