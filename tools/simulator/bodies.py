"""Every JSON shape the simulator emits, built in one place.

The pull API's call records (task details, call info) and the webhook bodies (call completion,
dialer ContactStatus) are built from the same `call_fields`, so for one call they carry the same
ids, number, status and times: the reconciliation can match a pulled record to a stored webhook.

Shapes: the call-completion body follows the team's sample events/workflow/call/completed.json;
the dialer body follows AIRUDDER's documented ContactStatus example
(shared/airudder-api/examples/workflow/dialer_contact_status.json). Times in records and in the
call-completion body are "YYYY-MM-DD HH:MM:SS" in UTC (no zone, as in the sample); the dialer
`timestamp` is Unix milliseconds in a string, as in AIRUDDER's example.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .dataset import Call, NodeTask, Workflow

RECORDING_PREFIX = "/recordings/"


def fmt_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def epoch_ms(value: dt.datetime) -> str:
    return str(int(value.timestamp() * 1000))


def parse_time(value: Any) -> dt.datetime | None:
    """A query time: ISO-8601 (a space or T, with or without offset; none means UTC) or Unix s/ms."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        number = float(value)
        if number > 1e11:  # milliseconds
            number /= 1000
        return dt.datetime.fromtimestamp(number, tz=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def recording_url(call: Call, base_url: str) -> str:
    """The call's recording on the simulator itself; empty for unanswered calls."""
    return f"{base_url.rstrip('/')}{RECORDING_PREFIX}{call.call_id}.wav" if call.answered else ""


def call_fields(call: Call, base_url: str) -> dict[str, Any]:
    """What the webhook and the pull API both say about a call."""
    return {
        "workflow_id": call.workflow_id,
        "workflow_name": call.workflow_name,
        "nodetask_id": call.nodetask_id,
        "nodetask_name": call.nodetask_name,
        "case_id": call.case_id,
        "task_id": call.task_id,
        "call_id": call.call_id,
        "callee": call.callee,
        "status": call.status,
        "start_time": fmt_time(call.start_time),
        "end_time": fmt_time(call.end_time),
        "talk_duration": call.talk_duration,
        "hangup_reason": call.hangup_reason,
        "nth_call": call.nth_call,
        "recLink": recording_url(call, base_url),
        "variables": {"amount": str(100_000 * (1 + int(call.case_id[-3:]) % 50)), "due_date": "2026-12-01"},
    }


def call_completed_body(call: Call, base_url: str) -> dict[str, Any]:
    """Notification of Call Completion in Workflow (one per call, after its last attempt)."""
    return call_fields(call, base_url)


def call_record(call: Call, base_url: str) -> dict[str, Any]:
    """One record of the task-detail and call-info APIs: the webhook's fields plus pull-only ones."""
    return {
        **call_fields(call, base_url),
        "node_type": call.node_type,
        "task_name": call.task_name,
        "state": "HANGUP",
        "hangupReason": call.dialer_hangup_code,
        "update_time": fmt_time(call.update_time),
    }


def dialer_states(call: Call) -> list[tuple[str, dt.datetime]]:
    """The ContactStatus states a dialer call passes through, with their times; HANGUP is last."""
    states = [("CALLING", call.start_time), ("RINGING", call.start_time + dt.timedelta(seconds=1))]
    if call.answer_time is not None:
        states.append(("ANSWERED", call.answer_time))
    states.append(("HANGUP", call.end_time))
    return states


def dialer_contact_status_body(call: Call, base_url: str, state: str = "HANGUP") -> dict[str, Any]:
    """Webhook of Predictive Dialer Contacts Status Changes, for one state of the call."""
    when = dict(dialer_states(call)).get(state, call.end_time)
    final = state == "HANGUP"
    return {
        "workflow_id": call.workflow_id,
        "workflow_name": call.workflow_name,
        "nodetask_id": call.nodetask_id,
        "nodetask_name": call.nodetask_name,
        "pds": {
            "type": "ContactStatus",
            "body": {
                "taskId": call.task_id,
                "taskName": call.task_name,
                "groupName": call.group_name,
                "state": state,
                "phoneNumber": call.callee,
                "callid": call.call_id,
                "contactName": "",
                "address": "",
                "info1": call.case_id,
                "info2": "",
                "info3": "",
                "remark": "",
                "hangupReason": call.dialer_hangup_code if final else 0,
                "timestamp": epoch_ms(when),
                "privateData": call.case_id,
                "recLink": recording_url(call, base_url) if final else "",
            },
        },
    }


def workflow_record(wf: Workflow) -> dict[str, Any]:
    return {
        "workflow_id": wf.workflow_id,
        "workflow_name": wf.workflow_name,
        "status": wf.status,
        "create_time": fmt_time(wf.create_time),
        "update_time": fmt_time(wf.update_time),
        "total_calls": wf.n_calls,
    }


def subtask_record(node: NodeTask) -> dict[str, Any]:
    return {
        "workflow_id": node.workflow_id,
        "nodetask_id": node.nodetask_id,
        "nodetask_name": node.nodetask_name,
        "node_type": node.node_type,
        "task_id": node.task_id,
        "create_time": fmt_time(node.create_time),
        "update_time": fmt_time(node.update_time),
    }


def outbound_task_record(node: NodeTask, workflow_name: str, status: str) -> dict[str, Any]:
    return {
        "workflow_id": node.workflow_id,
        "workflow_name": workflow_name,
        "nodetask_id": node.nodetask_id,
        "nodetask_name": node.nodetask_name,
        "task_id": node.task_id,
        "task_name": node.task_name,
        "status": status,
        "total_calls": len(node.call_ids),
        "create_time": fmt_time(node.create_time),
        "update_time": fmt_time(node.update_time),
    }


def envelope(data: Any) -> dict[str, Any]:
    """A successful answer, as the auth call's documented answer looks."""
    return {"data": data, "status": "OK", "code": 200}


def error_envelope(code: int, message: str) -> dict[str, Any]:
    return {"data": None, "status": "Fail", "code": code, "message": message}


class RawJson(str):
    """A JSON literal sent exactly as written (`1e400`, `NaN`, `"\\ud800"`, a 400-digit number): what a
    hostile or broken tenant may send, which Python's json.dumps cannot produce."""


def dump_json(payload: Any) -> bytes:
    """json.dumps, with every RawJson value written as its literal."""
    literals: list[str] = []

    def mark(value: Any) -> Any:
        if isinstance(value, RawJson):
            literals.append(str(value))
            return f"\x00raw{len(literals) - 1}\x00"
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(payload))
    for n, literal in enumerate(literals):
        text = text.replace(json.dumps(f"\x00raw{n}\x00"), literal, 1)
    return text.encode()


def reordered_json(body: Any, indent: int = 2) -> str:
    """The same JSON value written differently: keys in reverse order, another indentation. A redelivery
    whose bytes differ from the first delivery's while its value does not."""

    def reverse(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reverse(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [reverse(v) for v in value]
        return value

    return json.dumps(reverse(body), indent=indent)
