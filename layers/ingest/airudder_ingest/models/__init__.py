"""The webhook routes and the model that reads each one.

Paths are written exactly as in template.yaml; tests check that the two lists agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airudder_ingest.models.base import FALLBACK_KIND, EventFacts, IdentifierMissing, WebhookModel, read_facts
from airudder_ingest.models.campaigns import CALL_MODELS, PLAN_MODELS, TASK_MODELS
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
from airudder_ingest.models.leadgen import LeadgenCallCompleted, LeadgenCustomApiPush, LeadgenDialerPush
from airudder_ingest.models.unknown import UnknownDelivery
from airudder_ingest.models.workflow import (
    WorkflowCallCompleted,
    WorkflowChatbotSessionEnded,
    WorkflowCustomApiPush,
    WorkflowDialerPush,
    WorkflowInfoCheckCallCompleted,
    WorkflowListCompleted,
    WorkflowStatusChanged,
    WorkflowWabaMessageStatus,
)


@dataclass(frozen=True)
class ByPathParam:
    """A route whose model depends on one path segment, e.g. /webhooks/{product}/call.
    A value not in `models` is answered 404 and stored nowhere."""

    param: str
    models: Mapping[str, type[WebhookModel]]

    def pick(self, path_params: Mapping[str, str]) -> type[WebhookModel] | None:
        return self.models.get((path_params.get(self.param) or "").lower())


RouteModel = type[WebhookModel] | ByPathParam

ROUTES: dict[str, RouteModel] = {
    "/webhooks/workflow/dialer": WorkflowDialerPush,
    "/webhooks/workflow/call": WorkflowCallCompleted,
    "/webhooks/workflow/infocheck-call": WorkflowInfoCheckCallCompleted,
    "/webhooks/workflow/custom-api": WorkflowCustomApiPush,
    "/webhooks/workflow/list-completed": WorkflowListCompleted,
    "/webhooks/workflow/status-changed": WorkflowStatusChanged,
    "/webhooks/workflow/waba-message-status": WorkflowWabaMessageStatus,
    "/webhooks/workflow/chatbot-session-ended": WorkflowChatbotSessionEnded,
    # Campaign products: {product} is collection, telemarketing or infocheck (anything else: 404).
    "/webhooks/{product}/plan": ByPathParam("product", PLAN_MODELS),
    "/webhooks/{product}/task": ByPathParam("product", TASK_MODELS),
    "/webhooks/{product}/call": ByPathParam("product", CALL_MODELS),
    "/webhooks/leadgen/dialer": LeadgenDialerPush,
    "/webhooks/leadgen/call": LeadgenCallCompleted,
    "/webhooks/leadgen/custom-api": LeadgenCustomApiPush,
    "/webhooks/chatbot/template-result": ChatbotTemplateResult,
    "/webhooks/chatbot/template-reply": ChatbotTemplateReply,
    "/webhooks/chatbot/agent-transfer": ChatbotAgentTransfer,
    "/webhooks/chatbot/agent-transfer-star": ChatbotAgentTransferStar,
    "/webhooks/chatbot/message-status": ChatbotMessageStatus,
    "/webhooks/chatbot/message-status-star": ChatbotMessageStatusStar,
    "/webhooks/chatbot/user-message": ChatbotUserMessage,
    "/webhooks/chatbot/user-message-star": ChatbotUserMessageStar,
    "/webhooks/chatbot/session-ended": ChatbotSessionEnded,
    "/webhooks/chatbot/session-report": ChatbotSessionReport,
    "/webhooks/chatbot/inbound": ChatbotInbound,
    "/webhooks/{proxy+}": UnknownDelivery,
}


def model_for(route_path: str, path_params: Mapping[str, str] | None = None) -> type[WebhookModel] | None:
    """The model for a route as API Gateway names it (`routeKey` without the method)."""
    entry = ROUTES.get(route_path)
    if isinstance(entry, ByPathParam):
        return entry.pick(path_params or {})
    return entry


def all_models() -> list[type[WebhookModel]]:
    found: list[type[WebhookModel]] = []
    for entry in ROUTES.values():
        for model in entry.models.values() if isinstance(entry, ByPathParam) else [entry]:
            if model not in found:
                found.append(model)
    return found


__all__ = [
    "FALLBACK_KIND",
    "ROUTES",
    "ByPathParam",
    "EventFacts",
    "IdentifierMissing",
    "WebhookModel",
    "all_models",
    "model_for",
    "read_facts",
]
