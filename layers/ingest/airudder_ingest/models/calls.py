"""The call vocabulary every call-completion webhook shares.

AIRUDDER documents one field vocabulary for a finished call: the campaign task-detail API
(`/service/cloud/detail`), the campaign "Webhook of Call" and the Workflow call-completion
notification all carry it, the Workflow one adding its workflow ids (campaigns.md §3.3, workflow.md
§17). The field lists themselves were not recovered, so each field is looked for under every
spelling AIRUDDER uses elsewhere (snake_case in the Workflow APIs, PascalCase in the campaign task
APIs). Info Check calls carry more (their own page in both sections); `InfoCheckCallFields` adds
those on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    CALL_ID,
    CASE_ID,
    RECORDING,
    TASK_ID,
    EventFacts,
    IdentifierMissing,
    Text,
    WebhookModel,
    alias,
    http_link,
)

# The number called: a string, or an object holding `callee_number` (as in the Custom API push).
CALLEE = ("callee", "callee_number", "phoneNumber", "phone_number", "Callee", "CalleeNumber", "calleeNumber")
CALL_STATUS = ("status", "state", "call_status", "callStatus", "CallStatus", "call_result", "Status", "State")
# The time the event is filed under: the end of the call when given, its start otherwise.
CALL_END_TIME = (
    "end_time",
    "endTime",
    "call_end_time",
    "hangup_time",
    "EndTime",
    "timestamp",
    "call_time",
    "start_time",
    "StartTime",
)
PLAN_ID = ("plan_id", "planId", "PlanID", "planID", "planid")


def phone_of(value: Any) -> str | None:
    """The number from a `callee` that is either text or an object."""
    if isinstance(value, Mapping):
        value = next((value[k] for k in ("callee_number", "phone_number", "number") if value.get(k)), None)
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text or None


class CallFields(WebhookModel):
    """One finished call (one number of a task, after its last attempt)."""

    case_id: Text = alias(*CASE_ID)
    task_id: Text = alias(*TASK_ID)
    call_id: Text = alias(*CALL_ID)
    callee: Any = alias(*CALLEE)
    status: Text = alias(*CALL_STATUS)
    end_time: Any = alias(*CALL_END_TIME)
    recording: Text = alias(*RECORDING)

    def call_facts(self, **links: str | None) -> EventFacts:
        """Facts of the call, filed under the call (or, without a call id, under the case).
        `links` adds the ids of what the call belongs to (workflow_id, nodetask_id)."""
        common: dict[str, Any] = {
            "event_time": self.end_time,
            "status": self.status,
            "phone": phone_of(self.callee),
            "case_id": self.case_id,
            "task_id": self.task_id,
            "call_id": self.call_id,
            "recording_url": http_link(self.recording),
            **links,
        }
        if self.call_id:
            return EventFacts("CALL", self.call_id, **common)
        if self.case_id:
            return EventFacts("CASE", self.case_id, **common)
        raise IdentifierMissing("the call notification names neither a call id nor a case id")


class InfoCheckCallFields(CallFields):
    """An Info Check call: the shared call fields plus the verification outcome.

    The Info Check pages were not recovered; AIRUDDER only shows that their body differs. The names
    below are the team's assumption (events/README.md), typed loosely so that another shape is kept
    rather than refused.
    """

    verification_result: Any = alias(
        "verification_result", "verificationResult", "verify_result", "check_result", "checkResult"
    )
    answers: Any = alias("answers", "question_answers", "questions", "qa_results")
