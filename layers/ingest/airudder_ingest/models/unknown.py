"""Deliveries to a path we have no model for yet: kept whole, filed under their own event id."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from airudder_ingest.models.base import FALLBACK_KIND, EventFacts, WebhookModel


class UnknownDelivery(WebhookModel):
    """Any authenticated JSON object posted under /webhooks/ that no route models yet."""

    webhook_type = "unknown"
    title = "Any other callback (catch-all)"
    accepts_any_json = True

    @model_validator(mode="before")
    @classmethod
    def _any_json(cls, data: Any) -> Any:
        # An array or a scalar is kept too; the stored event is the body as received either way.
        return data if isinstance(data, dict) else {"value": data}

    def facts(self) -> EventFacts:
        return EventFacts(FALLBACK_KIND, None)
