"""Replay: archived deliveries back through the ingest pipeline (used by the `airudder-data replay` command).

An archived envelope (archive.py) holds the body exactly as received, with its route and receipt time.
Replaying one parses that body with the *current* models and files it with the webhook path's own steps
(IngestPipeline.build_record and store_record), keeping the original `received_at`; a new event gets
source "replay". Nothing is checked again that was checked at receipt (token, signature): only
authenticated deliveries are archived.

Idempotent: the event id depends only on the webhook type and the body, so a delivery already stored is
found by its id. When its entity state already holds it (or something newer), nothing at all is written
("unchanged"); when the state is missing or behind, the idempotent steps are redone ("repaired"). A
quarantined body that the current models accept is stored as a new event, and its envelope is copied
under raw/ (never over an existing object). What a model now reads differently from the stored event
(e.g. a newer model finds a phone number) is reported, not rewritten: event items are written once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from functools import partial
from typing import Any

from .apigw import WebhookRequest
from .archive import QUARANTINE_PREFIX, RAW_PREFIX, Envelope, body_of, is_quarantine_key
from .decryption import DecryptionFailed
from .events import raw_digest
from .models import EventFacts, WebhookModel, all_models, read_facts
from .pipeline import IngestPipeline
from .store import EventRecord

SOURCE = "replay"
# Facts a model derives from a body; a replay reports those that differ from the stored event's.
FACT_FIELDS = tuple(f.name for f in fields(EventFacts) if f.name != "event_time")
# How the store gives back the facts that are not plain text (absent when empty).
_STORED_EMPTY: dict[str, Any] = {"results": {}, "unreadable": ()}
OUTCOMES = ("stored", "repaired", "unchanged", "invalid")


@dataclass(frozen=True)
class ReplayResult:
    key: str  # the archive object replayed
    outcome: str  # one of OUTCOMES ("would store" / "would repair" on a dry run)
    webhook_type: str = ""
    event_id: str | None = None
    entity: str | None = None
    detail: str = ""
    differs: tuple[str, ...] = ()  # facts the current model reads differently from the stored event

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "outcome": self.outcome,
            "webhook_type": self.webhook_type,
            "event_id": self.event_id,
            "entity": self.entity,
            "detail": self.detail,
            "differs": list(self.differs),
        }


@dataclass
class ReplaySummary:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, result: ReplayResult) -> None:
        self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class _Invalid(Exception):
    pass


def _models_by_type() -> dict[str, type[WebhookModel]]:
    return {model.webhook_type: model for model in all_models()}


class Replayer:
    def __init__(self, pipeline: IngestPipeline, *, dry_run: bool = False) -> None:
        self.pipeline = pipeline
        self.store = pipeline.store
        self.archive = pipeline.archive
        self.dry_run = dry_run
        self._models = _models_by_type()

    # ------------------------------------------------------------------ what to replay

    def day_keys(self, day: str, webhook_type: str | None = None, *, quarantined: bool = False) -> Iterator[str]:
        return self.archive.day_keys(day, webhook_type, QUARANTINE_PREFIX if quarantined else RAW_PREFIX)

    def call_keys(self, call_id: str) -> list[str]:
        """The archived deliveries of a call's events (its history), oldest first."""
        keys: list[str] = []
        for event in self.store.entity_events("CALL", call_id, newest_first=False):
            key = event.get("archive_key")
            if key and key not in keys:
                keys.append(str(key))
        return keys

    def quarantine_key(self, quarantine_id: str) -> str | None:
        item = self.store.get_quarantine(quarantine_id)
        return str(item["archive_key"]) if item and item.get("archive_key") else None

    # ------------------------------------------------------------------ replaying one delivery

    def replay_key(self, key: str) -> ReplayResult:
        record = self.archive.get(key)
        webhook_type = str(record.get("webhook_type") or "")
        try:
            rec = self._record(record, webhook_type)
        except _Invalid as exc:
            return ReplayResult(key, "invalid", webhook_type, detail=str(exc))
        existing = self.store.get_event(rec.event_id)
        if existing is not None:
            return self._known(key, rec, existing)
        if is_quarantine_key(key):
            if not self.dry_run:
                # The delivery is accepted now: keep it under raw/ as well, as the webhook path would have.
                self.archive.put_new(rec.archive_key, _envelope(record, rec))
        elif key != rec.archive_key:
            # Already archived (the current model dates it differently): the event points at that object.
            rec = replace(rec, archive_key=key)
        if self.dry_run:
            return ReplayResult(key, "would store", webhook_type, rec.event_id, rec.entity)
        outcome = self.pipeline.store_record(rec)
        result = "stored" if outcome.result == "stored" else "repaired"
        return ReplayResult(key, result, webhook_type, rec.event_id, rec.entity)

    def _known(self, key: str, rec: EventRecord, existing: dict[str, Any]) -> ReplayResult:
        """The event is stored already: keep what it was stored with (times, source, archive object,
        facts); redo the state update only when the state does not hold it yet."""
        facts: dict[str, Any] = {name: _stored_fact(existing, name) for name in FACT_FIELDS}
        differs = tuple(name for name in FACT_FIELDS if getattr(rec, name) != facts[name])
        facts["entity_kind"] = str(existing.get("entity_kind") or rec.entity_kind)
        facts["entity_id"] = str(existing.get("entity_id") or rec.entity_id)
        stored = replace(
            rec.timed_as(existing),
            source=str(existing.get("source") or rec.source),
            archive_key=str(existing.get("archive_key") or rec.archive_key),
            **facts,
        )
        result = partial(ReplayResult, key, webhook_type=rec.webhook_type, event_id=rec.event_id, entity=stored.entity)
        if self.store.state_is_current(stored):
            return result("unchanged", differs=differs)
        if self.dry_run:
            return result("would repair", differs=differs)
        self.pipeline.store_record(stored)
        return result("repaired", differs=differs)

    def _record(self, record: dict[str, Any], webhook_type: str) -> EventRecord:
        """Parse an archived envelope's body with the current model, into the record the pipeline stores."""
        model = self._models.get(webhook_type)
        if model is None:
            raise _Invalid(f"no model for webhook type {webhook_type!r}")
        received_at = record.get("received_at")
        if not received_at:
            raise _Invalid("the archived envelope has no received_at")
        body = body_of(record)
        request = WebhookRequest(
            body=body,
            headers=dict(record.get("headers") or {}),
            query=dict(record.get("query") or {}),
            route_path=str(record.get("route") or ""),
            raw_path=str(record.get("path") or ""),
            request_id=str(record.get("request_id") or ""),
            source_ip=str(record.get("source_ip") or ""),
        )
        try:
            plaintext = self.pipeline.decryption.open(request, webhook_type)
        except DecryptionFailed as exc:
            raise _Invalid(f"body could not be decrypted: {exc}") from None
        try:
            value = json.loads((body if plaintext is None else plaintext).decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _Invalid(f"body is not valid JSON: {exc}") from None
        if not isinstance(value, dict) and not model.accepts_any_json:
            raise _Invalid(f"body of a {webhook_type} delivery is JSON but not an object")
        facts = read_facts(model, value)
        return self.pipeline.build_record(
            webhook_type=webhook_type,
            route=request.route_path,
            value=value,
            facts=facts,
            received_at=str(received_at),
            source=SOURCE,
        )


def _stored_fact(existing: dict[str, Any], name: str) -> Any:
    """A fact as the stored event holds it, in the type EventRecord uses."""
    value = existing.get(name)
    if name not in _STORED_EMPTY:
        return value
    if value is None:
        return _STORED_EMPTY[name]
    return tuple(value) if name == "unreadable" else dict(value)


def _envelope(record: dict[str, Any], rec: EventRecord) -> Envelope:
    """The raw/ envelope of a formerly quarantined delivery: the same body and origin, now with its event."""
    body = body_of(record)
    return Envelope(
        webhook_type=rec.webhook_type,
        route=rec.route,
        path=str(record.get("path") or ""),
        received_at=rec.received_at,
        body=body,
        raw_sha256=str(record.get("raw_sha256") or raw_digest(body)),
        headers=dict(record.get("headers") or {}),
        query=dict(record.get("query") or {}),
        source=SOURCE,
        source_ip=str(record.get("source_ip") or ""),
        request_id=str(record.get("request_id") or ""),
        event_id=rec.event_id,
        event_time=rec.event_time,
    )
