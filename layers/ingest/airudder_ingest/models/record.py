"""One event as the ingest path stores it: what a model read (EventFacts), normalised and named."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from airudder_ingest.base.limits import MAX_SORT_KEY_BYTES, key_part


def entity_key(kind: str, entity_id: str) -> str:
    """<KIND>#<entity id>: the partition of an entity's state and events (store.py)."""
    return f"{kind}#{key_part(entity_id, MAX_SORT_KEY_BYTES - len(kind.encode()) - 1)}"


@dataclass(frozen=True, kw_only=True)
class FactFields:
    """The facts of an event besides its entity and time: read from the body (models.base.EventFacts,
    phone as sent) and stored normalised (EventRecord). Keyword-only, so that each may put its own
    required fields first."""

    status: str | None = None
    phone: str | None = None
    case_id: str | None = None
    workflow_id: str | None = None
    nodetask_id: str | None = None
    task_id: str | None = None
    call_id: str | None = None
    recording_url: str | None = None
    agent: str | None = None
    # An agent's disposition of the call: result title -> value (`talkResultLabel`, `customizeResults`).
    results: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventRecord(FactFields):
    """One event, normalised: what the store writes for a delivery (or a synced or replayed record)."""

    event_id: str
    webhook_type: str
    route: str
    source: str
    received_at: str
    event_time: str
    time_source: str  # "payload" when the body carried a time, else "received"
    entity_kind: str
    entity_id: str
    unreadable: tuple[str, ...] = ()  # facts the model could not read (models.base.EventFacts)
    request_id: str | None = None  # API Gateway's request id of the delivery (logs' correlation_id)

    @property
    def entity(self) -> str:
        return entity_key(self.entity_kind, self.entity_id)

    @property
    def day(self) -> str:
        return self.event_time[:10]

    @property
    def timed(self) -> bool:
        """True when the body carried the time: the event's sort key holds it."""
        return self.time_source == "payload"

    def timed_as(self, stored: Mapping[str, Any]) -> EventRecord:
        """The same event as it was first stored: its times and source (for a redelivery)."""
        return replace(
            self,
            source=str(stored.get("source") or self.source),
            event_time=str(stored.get("event_time", self.event_time)),
            received_at=str(stored.get("received_at", self.received_at)),
            time_source=str(stored.get("time_source", self.time_source)),
        )
