"""The webhook routes and the model that reads each one.

Paths are written exactly as in template.yaml; tests check that the two lists agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .base import EventFacts, IdentifierMissing, WebhookModel
from .unknown import UnknownDelivery
from .workflow import (
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


__all__ = ["ROUTES", "ByPathParam", "EventFacts", "IdentifierMissing", "WebhookModel", "all_models", "model_for"]
