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

from typing import Any

from airudder_ingest.models.base import (
    EventFacts,
    Phone,
    Text,
    WebhookModel,
    alias,
    file_under,
    http_link,
    result_labels,
)
from airudder_ingest.models.spellings import AGENT, CALL_ID, CASE_ID, RECORDING, TASK_ID

# The number called: a string, or an object holding `callee_number` (as in the Custom API push).
CALLEE = ("callee", "callee_number", "phoneNumber", "phone_number", "Callee", "CalleeNumber", "calleeNumber")
# PDS records and AgentStatus pushes [3P] may leave `phoneNumber` "" and hold the number here.
MAIN_NUMBER = ("mainNumber", "main_number")
# `callResultType`: the outcome of a PDS call record [3P], which has no state key.
CALL_STATUS = (
    "status",
    "state",
    "call_status",
    "callStatus",
    "CallStatus",
    "call_result",
    "Status",
    "State",
    "callResultType",
)
# The time the event is filed under: the end of the call when given, its start otherwise
# (`endtime`/`calltime`: PDS call records [3P], ISO-8601 with `Z`, "" when unset).
CALL_END_TIME = (
    "end_time",
    "endTime",
    "endtime",
    "call_end_time",
    "hangup_time",
    "EndTime",
    "timestamp",
    "call_time",
    "calltime",
    "start_time",
    "StartTime",
)
PLAN_ID = ("plan_id", "planId", "PlanID", "planID", "planid")
# An agent's disposition: a single label, and custom result levels (object or list, see result_labels).
TALK_RESULT = ("talkResultLabel", "talkResult", "talk_result")
CUSTOM_RESULTS = ("customizeResults", "customize_results")


class CallFields(WebhookModel):
    """One finished call (one number of a task, after its last attempt)."""

    case_id: Text = alias(*CASE_ID)
    task_id: Text = alias(*TASK_ID)
    call_id: Text = alias(*CALL_ID)
    callee: Phone = alias(*CALLEE)
    main_number: Phone = alias(*MAIN_NUMBER)
    status: Text = alias(*CALL_STATUS)
    end_time: Any = alias(*CALL_END_TIME)
    recording: Text = alias(*RECORDING)
    agent: Text = alias(*AGENT)
    talk_result: Text = alias(*TALK_RESULT)
    custom_results: Any = alias(*CUSTOM_RESULTS)

    def call_facts(self, **links: Any) -> EventFacts:
        """Facts of the call, filed under the call (or, without a call id, under the case).
        `links` adds the ids of what the call belongs to (workflow_id, nodetask_id)."""
        return file_under(
            ("CALL", "call_id", self.call_id),
            ("CASE", "case_id", self.case_id),
            event_time=self.end_time,
            status=self.status,
            phone=self.callee or self.main_number,  # Phone fields are None when blank
            case_id=self.case_id,
            task_id=self.task_id,
            call_id=self.call_id,
            **call_outcome(self.recording, self.agent, self.talk_result, self.custom_results),
            **links,
        )


def call_outcome(
    recording: str | None, agent: str | None, talk_result: str | None, custom_results: Any
) -> dict[str, Any]:
    """How a call ended, as facts: its recording link, its agent and the agent's disposition (a campaign
    call and a workflow's dialer push carry them alike)."""
    return {"recording_url": http_link(recording), "agent": agent, "results": labels(talk_result, custom_results)}


def labels(talk_result: str | None, custom_results: Any) -> dict[str, str]:
    """The disposition as result title -> value: the talk result under `talkResult`, then each custom result."""
    found = {"talkResult": talk_result} if talk_result else {}
    return {**found, **{k: v for k, v in result_labels(custom_results).items() if k not in found}}


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
