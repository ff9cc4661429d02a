"""The webhook routes and the model that reads each one.

Paths are written exactly as in template.yaml; tests check that the two lists agree. A route names its
model by module and class (`ModelPath`), imported when a delivery first needs it: a webhook function
loads the model module of its own route only, never the other families' (cold start, README
"Performance").
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from dataclasses import dataclass

from airudder_ingest.models.base import FALLBACK_KIND, EventFacts, IdentifierMissing, WebhookModel, read_facts


@dataclass(frozen=True)
class ModelPath:
    """A model by where it lives: `airudder_ingest.models.<module>`, class `name`."""

    module: str
    name: str

    def load(self) -> type[WebhookModel]:
        return _imported(self.module, self.name)


@functools.cache
def _imported(module: str, name: str) -> type[WebhookModel]:
    # Cached: the class this copy of the package first found stays its answer, even in a test process
    # whose local stack imports the handler's own copy of the layer beside it.
    model: type[WebhookModel] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return model


ModelRef = type[WebhookModel] | ModelPath


def _loaded(ref: ModelRef) -> type[WebhookModel]:
    return ref.load() if isinstance(ref, ModelPath) else ref


@dataclass(frozen=True)
class ByPathParam:
    """A route whose model depends on one path segment, e.g. /webhooks/{product}/call.
    A value not in `models` is answered 404 and stored nowhere."""

    param: str
    models: Mapping[str, ModelRef]

    def pick(self, path_params: Mapping[str, str]) -> type[WebhookModel] | None:
        found = self.models.get((path_params.get(self.param) or "").lower())
        return None if found is None else _loaded(found)


RouteModel = ModelRef | ByPathParam

ROUTES: dict[str, RouteModel] = {
    "/webhooks/workflow/dialer": ModelPath("workflow", "WorkflowDialerPush"),
    "/webhooks/workflow/call": ModelPath("workflow", "WorkflowCallCompleted"),
    "/webhooks/workflow/infocheck-call": ModelPath("workflow", "WorkflowInfoCheckCallCompleted"),
    "/webhooks/workflow/custom-api": ModelPath("workflow", "WorkflowCustomApiPush"),
    "/webhooks/workflow/list-completed": ModelPath("workflow", "WorkflowListCompleted"),
    "/webhooks/workflow/status-changed": ModelPath("workflow", "WorkflowStatusChanged"),
    "/webhooks/workflow/waba-message-status": ModelPath("workflow", "WorkflowWabaMessageStatus"),
    "/webhooks/workflow/chatbot-session-ended": ModelPath("workflow", "WorkflowChatbotSessionEnded"),
    # Campaign products: {product} is collection, telemarketing or infocheck (anything else: 404).
    "/webhooks/{product}/plan": ByPathParam(
        "product",
        {
            "collection": ModelPath("campaigns", "CollectionPlanFinished"),
            "telemarketing": ModelPath("campaigns", "TelemarketingPlanFinished"),
            "infocheck": ModelPath("campaigns", "InfoCheckPlanFinished"),
        },
    ),
    "/webhooks/{product}/task": ByPathParam(
        "product",
        {
            "collection": ModelPath("campaigns", "CollectionTaskFinished"),
            "telemarketing": ModelPath("campaigns", "TelemarketingTaskFinished"),
            "infocheck": ModelPath("campaigns", "InfoCheckTaskFinished"),
        },
    ),
    "/webhooks/{product}/call": ByPathParam(
        "product",
        {
            "collection": ModelPath("campaigns", "CollectionCallCompleted"),
            "telemarketing": ModelPath("campaigns", "TelemarketingCallCompleted"),
            "infocheck": ModelPath("campaigns", "InfoCheckCallCompleted"),
        },
    ),
    "/webhooks/leadgen/dialer": ModelPath("leadgen", "LeadgenDialerPush"),
    "/webhooks/leadgen/call": ModelPath("leadgen", "LeadgenCallCompleted"),
    "/webhooks/leadgen/custom-api": ModelPath("leadgen", "LeadgenCustomApiPush"),
    "/webhooks/chatbot/template-result": ModelPath("chatbot", "ChatbotTemplateResult"),
    "/webhooks/chatbot/template-reply": ModelPath("chatbot", "ChatbotTemplateReply"),
    "/webhooks/chatbot/agent-transfer": ModelPath("chatbot", "ChatbotAgentTransfer"),
    "/webhooks/chatbot/agent-transfer-star": ModelPath("chatbot", "ChatbotAgentTransferStar"),
    "/webhooks/chatbot/message-status": ModelPath("chatbot", "ChatbotMessageStatus"),
    "/webhooks/chatbot/message-status-star": ModelPath("chatbot", "ChatbotMessageStatusStar"),
    "/webhooks/chatbot/user-message": ModelPath("chatbot", "ChatbotUserMessage"),
    "/webhooks/chatbot/user-message-star": ModelPath("chatbot", "ChatbotUserMessageStar"),
    "/webhooks/chatbot/session-ended": ModelPath("chatbot", "ChatbotSessionEnded"),
    "/webhooks/chatbot/session-report": ModelPath("chatbot", "ChatbotSessionReport"),
    "/webhooks/chatbot/inbound": ModelPath("chatbot", "ChatbotInbound"),
    "/webhooks/{proxy+}": ModelPath("unknown", "UnknownDelivery"),
}


def model_for(route_path: str, path_params: Mapping[str, str] | None = None) -> type[WebhookModel] | None:
    """The model for a route as API Gateway names it (`routeKey` without the method)."""
    entry = ROUTES.get(route_path)
    if isinstance(entry, ByPathParam):
        return entry.pick(path_params or {})
    return None if entry is None else _loaded(entry)


def all_models() -> list[type[WebhookModel]]:
    """Every route's model (imports every model module: for tools and tests, not the webhook path)."""
    found: list[type[WebhookModel]] = []
    for entry in ROUTES.values():
        for ref in entry.models.values() if isinstance(entry, ByPathParam) else [entry]:
            model = _loaded(ref)
            if model not in found:
                found.append(model)
    return found


__all__ = [
    "FALLBACK_KIND",
    "ROUTES",
    "ByPathParam",
    "EventFacts",
    "IdentifierMissing",
    "ModelPath",
    "WebhookModel",
    "all_models",
    "model_for",
    "read_facts",
]
