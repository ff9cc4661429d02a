"""Chatbot (WhatsApp chatbot) callbacks (../shared/airudder-api/chatbot.md).

None of the Chatbot section's pages could be read: only the callback titles are known. The closest
recovered body is the Workflow "Chatbot Session End Notification" (workflow.md §28), whose top-level
names (`call_id` as the session id, `callee`, `channel`, `channel_id`, `robot_id`, `status`,
`timestamp`) and message object (`msg_id`, `sender_type`, `timestamp`, `status`, `content`, `reply`)
are what every model here looks for first; other spellings are accepted after them.

Entities: a conversation is SESSION#<session id> (the session id is also kept as the event's call
id, as the Workflow model does); a message is MESSAGE#<msg id>; a send task without a message id is
WABATASK#<task id>. What each callback files under is our choice (see docs/routes.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from airudder_ingest.models.base import (
    EventFacts,
    Int,
    Model,
    Phone,
    Text,
    WebhookModel,
    alias,
    file_under,
    first,
    text_or_none,
    variant,
)
from airudder_ingest.models.spellings import CASE_ID

SESSION_ID = (
    "call_id",
    "callid",
    "callId",
    "session_id",
    "sessionId",
    "conversation_id",
    "conversationId",
    "chat_id",
)
MSG_ID = ("msg_id", "message_id", "messageId", "msgId", "wamid")
CHAT_TASK_ID = ("waba_task_id", "wabaTaskId", "task_id", "taskId", "TaskID")
USER_NUMBER = ("callee", "callee_number", "phone_number", "phoneNumber", "user_number", "customer_number", "wa_id")
EVENT_TIME = ("timestamp", "time", "event_time", "eventTime", "update_time")


def _present(*values: Any) -> Any:
    """The first value that is neither None nor blank text."""
    return next((v for v in values if v is not None and not (isinstance(v, str) and not v.strip())), None)


class _ChatbotFields(WebhookModel):
    session_id: Text = alias(*SESSION_ID)
    message_id: Text = alias(*MSG_ID)
    task_id: Text = alias(*CHAT_TASK_ID)
    case_id: Text = alias(*CASE_ID)
    callee: Phone = alias(*USER_NUMBER)
    channel: Text = None
    channel_id: Text = None
    robot_id: Text = alias("robot_id", "robotId", "bot_id", "botId")
    status: Text = alias("status", "message_status", "msg_status", "state")
    timestamp: Any = alias(*EVENT_TIME)
    # A message object as in §28's `messages[]`; any other shape (e.g. plain text) is kept as sent.
    message: Any = alias("message", "msg")
    workflow_id: Text = None
    nodetask_id: Text = None

    # Status filed when the body carries none.
    default_status: ClassVar[str | None] = None

    def _in_message(self, *names: str) -> Any:
        if isinstance(self.message, Mapping):
            return _present(*(self.message.get(n) for n in names))
        return None

    def sent_message_id(self) -> str | None:
        return first(self.message_id, text_or_none(self._in_message(*MSG_ID)))

    def event_time(self) -> Any:
        return _present(self.timestamp, self._in_message("timestamp", "time"))

    def user_phone(self) -> str | None:
        return self.callee

    # The entities a chatbot callback may be filed under, as file_under takes them.
    def _message(self) -> tuple[str, str, str | None]:
        return ("MESSAGE", "message_id", self.sent_message_id())

    def _session(self) -> tuple[str, str, str | None]:
        return ("SESSION", "session_id", self.session_id)

    def _send_task(self) -> tuple[str, str, str | None]:
        return ("WABATASK", "task_id", self.task_id)

    def _facts(self, *chain: tuple[str, str, str | None], status: str | None = None) -> EventFacts:
        """Filed under the first entity of `chain` the body names (see file_under)."""
        return file_under(
            *chain,
            event_time=self.event_time(),
            status=first(status, self.status, text_or_none(self._in_message("status")), self.default_status),
            phone=self.user_phone(),
            case_id=self.case_id,
            workflow_id=self.workflow_id,
            nodetask_id=self.nodetask_id,
            task_id=self.task_id,
            call_id=self.session_id,
        )


def _star(callback: type[Model], name: str) -> type[Model]:
    """The "*" variant of a callback (what "*" denotes was not recovered): the same body, its own type."""
    doc = f'The "*" variant of {callback.__name__} (what "*" denotes was not recovered).'
    return variant(callback, name, f"{callback.webhook_type}_star", f"{callback.title} *", doc)


# --- template messages ---------------------------------------------------------------------------------


class ChatbotTemplateResult(_ChatbotFields):
    """Callback template message sending result: whether a template message could be sent."""

    webhook_type = "chatbot.template_result"
    title = "Callback template message sending result"

    template_id: Text = alias("template_id", "templateId")
    template_name: Text = alias("template_name", "templateName")
    error_code: Any = alias("error_code", "errorCode", "err_code")
    error_message: Any = alias("error_message", "errorMessage", "error_msg", "fail_reason", "reason")

    def facts(self) -> EventFacts:
        return self._facts(self._message(), self._send_task(), self._session())


class ChatbotTemplateReply(_ChatbotFields):
    """Callback single template message user response: the user answered one template message.

    Filed under the template message answered (so its state reads `replied`), else under the reply.
    """

    webhook_type = "chatbot.template_reply"
    title = "Callback single template message user response"
    default_status = "replied"

    reply: Any = None
    replied_msg_id: Text = alias("reply_msg_id", "replied_msg_id", "template_msg_id", "context_msg_id")

    def answered_message_id(self) -> str | None:
        quoted = _present(self.reply, self._in_message("reply"))
        return first(self.replied_msg_id, text_or_none(quoted.get("msg_id")) if isinstance(quoted, Mapping) else None)

    def facts(self) -> EventFacts:
        answered = ("MESSAGE", "replied_message_id", self.answered_message_id())
        return self._facts(answered, self._message(), self._session(), status="replied")


# --- conversation --------------------------------------------------------------------------------------


class ChatbotAgentTransfer(_ChatbotFields):
    """Callback agent transfer request: the bot asks for the conversation to go to a human agent."""

    webhook_type = "chatbot.agent_transfer"
    title = "Callback agent transfer request"
    default_status = "agent_transfer_requested"

    # §28's system message names seats on a hand-over: `from_seat_id` / `to_seat_id`.
    from_seat_id: Text = alias("from_seat_id", "fromSeatId")
    to_seat_id: Text = alias("to_seat_id", "toSeatId", "seat_id", "agent_id")
    reason: Any = alias("reason", "transfer_reason", "transferReason")

    def facts(self) -> EventFacts:
        return self._facts(self._session())


ChatbotAgentTransferStar = _star(ChatbotAgentTransfer, "ChatbotAgentTransferStar")


class ChatbotMessageStatus(_ChatbotFields):
    """Callback status change after the message is sent (e.g. delivery, read)."""

    webhook_type = "chatbot.message_status"
    title = "Callback status change after the message is sent"

    def facts(self) -> EventFacts:
        # Without a message id: its send task, else its conversation.
        return self._facts(self._message(), self._send_task(), self._session())


ChatbotMessageStatusStar = _star(ChatbotMessageStatus, "ChatbotMessageStatusStar")


class ChatbotUserMessage(_ChatbotFields):
    """Callback message sent by user: a message the user wrote in a conversation."""

    webhook_type = "chatbot.user_message"
    title = "Callback message sent by user"
    default_status = "received"

    sender_type: Text = None

    def facts(self) -> EventFacts:
        return self._facts(self._message(), self._session())


ChatbotUserMessageStar = _star(ChatbotUserMessage, "ChatbotUserMessageStar")


# --- end of a session ----------------------------------------------------------------------------------


class ChatbotSessionEnded(_ChatbotFields):
    """Callback for session end event. Modelled on the Workflow session-end body (§28)."""

    webhook_type = "chatbot.session_ended"
    title = "Callback for session end event"
    default_status = "ended"

    session_start_time: Any = None
    session_end_time: Any = None
    session_end_reason: Text = None
    intention: Text = None
    talk_round: Int = None
    messages: Any = None

    def event_time(self) -> Any:
        return _present(self.timestamp, self.session_end_time)

    def facts(self) -> EventFacts:
        return self._facts(self._session())


class ChatbotSessionReport(ChatbotSessionEnded):
    """Report after session ends: the session's outcome (intention, slots, labels, transcript)."""

    webhook_type = "chatbot.session_report"
    title = "Report after session ends"
    default_status = "reported"


# --- inbound -------------------------------------------------------------------------------------------


class ChatbotInbound(_ChatbotFields):
    """Inbound Callback: a conversation the user started. Filed under its session, else its first
    message; the user's number may come as `caller` (our assumption) or as `callee`."""

    webhook_type = "chatbot.inbound"
    title = "Inbound Callback"
    default_status = "inbound"

    caller: Phone = alias("caller", "caller_number", "callerNumber", "from_number", "fromNumber")

    def user_phone(self) -> str | None:
        return first(self.caller, self.callee)

    def facts(self) -> EventFacts:
        return self._facts(self._session(), self._message())
