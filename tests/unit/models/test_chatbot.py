"""Chatbot callback models: what each sample is filed under, and the identifiers each finds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airudder_ingest.models import IdentifierMissing, WebhookModel, model_for, read_facts
from airudder_ingest.models.chatbot import (
    ChatbotAgentTransfer,
    ChatbotAgentTransferStar,
    ChatbotInbound,
    ChatbotMessageStatus,
    ChatbotMessageStatusStar,
    ChatbotSessionEnded,
    ChatbotSessionReport,
    ChatbotTemplateReply,
    ChatbotTemplateResult,
    ChatbotUserMessage,
    ChatbotUserMessageStar,
)

EVENTS = Path(__file__).resolve().parents[3] / "events"
SESSION = "4fbb6c41833b65ff3444502517b7ea91"
TEMPLATE_MSG = "b8516e9937579154b9fee08297c700ec"
WABA_TASK = "86ab98575dcd394ea065c8ef0cc58773"
USER = "+6281399990000"


def facts_of(relative: str) -> Any:
    route = "/webhooks/chatbot/" + relative.split("/")[0]
    model = model_for(route)
    assert model is not None, route
    return model.model_validate(json.loads((EVENTS / "chatbot" / relative).read_text())).facts()


@pytest.mark.parametrize(
    ("segment", "model", "webhook_type"),
    [
        ("template-result", ChatbotTemplateResult, "chatbot.template_result"),
        ("template-reply", ChatbotTemplateReply, "chatbot.template_reply"),
        ("agent-transfer", ChatbotAgentTransfer, "chatbot.agent_transfer"),
        ("agent-transfer-star", ChatbotAgentTransferStar, "chatbot.agent_transfer_star"),
        ("message-status", ChatbotMessageStatus, "chatbot.message_status"),
        ("message-status-star", ChatbotMessageStatusStar, "chatbot.message_status_star"),
        ("user-message", ChatbotUserMessage, "chatbot.user_message"),
        ("user-message-star", ChatbotUserMessageStar, "chatbot.user_message_star"),
        ("session-ended", ChatbotSessionEnded, "chatbot.session_ended"),
        ("session-report", ChatbotSessionReport, "chatbot.session_report"),
        ("inbound", ChatbotInbound, "chatbot.inbound"),
    ],
)
def test_one_route_and_one_type_per_callback(segment: str, model: type[WebhookModel], webhook_type: str) -> None:
    assert model_for(f"/webhooks/chatbot/{segment}") is model
    assert model.webhook_type == webhook_type


@pytest.mark.parametrize(
    ("file", "kind", "entity", "status", "time", "task"),
    [
        ("template-result/sent.json", "MESSAGE", TEMPLATE_MSG, "sent", 1744790400, WABA_TASK),
        ("template-result/failed.json", "MESSAGE", "c347fd9102cb8f8dbb87145862c88673", "failed", 1744790401, WABA_TASK),
        ("message-status/delivery.json", "MESSAGE", TEMPLATE_MSG, "delivery", 1744790402, None),
        ("message-status/read.json", "MESSAGE", TEMPLATE_MSG, "read", 1744790530, None),
        ("message-status-star/read.json", "MESSAGE", "9b953ac41999d827997922b6f10e313c", "read", 1744790700, None),
        # The reply updates the template message it answers, not the user's own message.
        ("template-reply/reply.json", "MESSAGE", TEMPLATE_MSG, "replied", 1744790555, None),
        ("user-message/text.json", "MESSAGE", "2a5b872fdfe04f3afdb454a33dde1c4f", "received", 1744790620, None),
        ("user-message-star/text.json", "MESSAGE", "e05e904c2f3c7d5d518e1835b4dbbcab", "received", 1744790688, None),
        ("agent-transfer/request.json", "SESSION", SESSION, "agent_transfer_requested", 1744790561, None),
        ("session-ended/session.json", "SESSION", SESSION, "closed", 1744791160, None),
        ("session-report/report.json", "SESSION", SESSION, "closed", 1744791175, None),
    ],
)
def test_samples_of_one_conversation(
    file: str, kind: str, entity: str, status: str, time: int, task: str | None
) -> None:
    facts = facts_of(file)
    assert (facts.entity_kind, facts.entity_id, facts.status, facts.event_time) == (kind, entity, status, time)
    assert facts.task_id == task
    if file != "template-result/failed.json":  # that one went to another number, outside the conversation
        assert (facts.phone, facts.call_id) == (USER, SESSION)  # the session id is kept as the call id
    assert facts.recording_url is None and facts.workflow_id is None


def test_samples_of_other_conversations() -> None:
    star = facts_of("agent-transfer-star/request.json")
    assert (star.entity_kind, star.entity_id, star.phone) == (
        "SESSION",
        "08f3e94c89a4dcfbc08c2ca0be930cf6",
        "+6281300000002",
    )
    inbound = facts_of("inbound/conversation.json")
    assert (inbound.entity_kind, inbound.entity_id, inbound.status, inbound.phone, inbound.event_time) == (
        "SESSION",
        "d2b44fcb8cf6b2afa9d2a76fc30a2dae",
        "inbound",
        "+6281300000003",
        1744795000,
    )


def test_template_result_fields() -> None:
    body = json.loads((EVENTS / "chatbot/template-result/failed.json").read_text())
    parsed = ChatbotTemplateResult.model_validate(body)
    assert (parsed.error_code, parsed.error_message) == ("131026", "Message undeliverable")
    assert parsed.model_extra == {"template": {"id": 52, "name": "due_reminder_en", "language": "en"}}


def test_session_report_keeps_the_transcript() -> None:
    body = json.loads((EVENTS / "chatbot/session-report/report.json").read_text())
    parsed = ChatbotSessionReport.model_validate(body)
    assert [m["sender_type"] for m in parsed.messages] == ["system", "chatbot", "user"]
    assert (parsed.intention, parsed.talk_round, parsed.session_end_reason) == ("E", 4, "agent")
    assert parsed.model_extra is not None and parsed.model_extra["ner_slots"] == {"promise_date": "2025-04-18"}


# ------------------------------------------------------------------------------------------ fallbacks and spellings


def test_message_ids_are_found_at_the_top_or_in_the_message() -> None:
    top = ChatbotUserMessage.model_validate({"message_id": "m1", "conversation_id": "s1", "status": "delivery"})
    nested = ChatbotUserMessageStar.model_validate({"sessionId": "s1", "message": {"msgId": "m2", "time": 7}})
    assert (top.facts().entity_id, top.facts().status, top.facts().call_id) == ("m1", "delivery", "s1")
    assert (nested.facts().entity_id, nested.facts().event_time, nested.facts().status) == ("m2", 7, "received")


def test_a_plain_text_message_is_kept_and_the_session_is_used() -> None:
    parsed = ChatbotUserMessage.model_validate({"session_id": "s1", "message": "hello", "timestamp": 3})
    assert parsed.message == "hello"
    assert (parsed.facts().entity_kind, parsed.facts().entity_id) == ("SESSION", "s1")


def test_status_without_message_id_falls_back_to_the_send_task() -> None:
    facts = ChatbotMessageStatus.model_validate({"task_id": "t1", "status": "failed"}).facts()
    assert (facts.entity_kind, facts.entity_id, facts.task_id) == ("WABATASK", "t1", "t1")
    result = ChatbotTemplateResult.model_validate({"waba_task_id": "t2", "status": "sent"}).facts()
    assert (result.entity_kind, result.entity_id) == ("WABATASK", "t2")


def test_template_reply_targets() -> None:
    explicit = ChatbotTemplateReply.model_validate({"msg_id": "u1", "reply_msg_id": "t1"}).facts()
    quoted = ChatbotTemplateReply.model_validate({"msg_id": "u1", "reply": {"msg_id": "t2"}}).facts()
    own = ChatbotTemplateReply.model_validate({"msg_id": "u1"}).facts()
    session = ChatbotTemplateReply.model_validate({"call_id": "s1"}).facts()
    assert [f.entity_id for f in (explicit, quoted, own, session)] == ["t1", "t2", "u1", "s1"]
    assert session.entity_kind == "SESSION" and {f.status for f in (explicit, quoted, own, session)} == {"replied"}


def test_inbound_caller_number_and_message_fallback() -> None:
    facts = ChatbotInbound.model_validate({"caller": "+62812", "callee": "+62899", "msg_id": "m1"}).facts()
    assert (facts.entity_kind, facts.entity_id, facts.phone) == ("MESSAGE", "m1", "+62812")


def test_session_end_time_is_used_when_there_is_no_timestamp() -> None:
    facts = ChatbotSessionEnded.model_validate({"call_id": "s1", "session_end_time": "2025-04-16T08:12:40Z"}).facts()
    assert (facts.status, facts.event_time) == ("ended", "2025-04-16T08:12:40Z")
    assert ChatbotSessionReport.model_validate({"call_id": "s1"}).facts().status == "reported"


@pytest.mark.parametrize(
    "model",
    [
        ChatbotTemplateResult,
        ChatbotTemplateReply,
        ChatbotAgentTransfer,
        ChatbotMessageStatus,
        ChatbotUserMessage,
        ChatbotSessionEnded,
        ChatbotSessionReport,
        ChatbotInbound,
    ],
)
def test_a_callback_naming_nothing_is_filed_under_itself(model: Any) -> None:
    body = {"callee": "+62811", "status": "read", "timestamp": 1}
    with pytest.raises(IdentifierMissing):
        model.model_validate(body).facts()
    facts = read_facts(model, body)
    assert (facts.entity_kind, facts.entity_id, facts.phone) == ("DELIVERY", None, "+62811")
    assert len(facts.unreadable) == 1 and facts.unreadable[0] in ("message_id", "replied_message_id", "session_id")


@pytest.mark.parametrize("model", [ChatbotTemplateResult, ChatbotMessageStatus, ChatbotMessageStatusStar])
def test_a_message_callback_without_a_message_id_is_filed_under_its_conversation(model: Any) -> None:
    facts = read_facts(model, {"conversation_id": "s1", "timestamp": 1744770000, "status": "read"})
    assert (facts.entity_kind, facts.entity_id, facts.unreadable) == ("SESSION", "s1", ("message_id",))
