"""Replay: stored deliveries read again with the current models (the `airudder-data replay` command).

What is replayed comes from the archive (the lines of a day's raw/ or quarantine/ objects) or from the
table (a call's events in its partition, a quarantined delivery by id); either way it is a line as
archive.archive_line makes it: the body exactly as received, with its route and receipt time. Replaying
one parses that body with the *current* models and files it with the recorder's own steps
(EventRecorder.build_record and store_record), keeping the original `received_at`; a new event gets
source "replay". Nothing is checked again that was checked at receipt (token, signature): only
authenticated deliveries are stored or archived.

Idempotent: the event id depends only on the webhook type and the body, so a delivery already stored is
found at its key. When its entity state already holds it (or something newer), nothing at all is written
("unchanged"); when the state is missing or behind, the state and the recording link are redone
("repaired"). An event read from the archive but missing from the table (e.g. gone by TTL) is stored
again marked `in_archive`, so the archiver does not write its line a second time. A quarantined body that
the current models accept is stored as a new event (the archiver then archives it under raw/ from the
table's stream) and its quarantine item says so. What a model now reads differently from the stored
event (e.g. a newer model finds a phone number) is reported, not rewritten: event items are written once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import partial
from typing import Any

from airudder_ingest.base.events import canonical_json
from airudder_ingest.edge.apigw import WebhookRequest
from airudder_ingest.edge.decryption import DecryptionFailed, PayloadDecryption
from airudder_ingest.models import EventFacts, WebhookModel, all_models, read_facts
from airudder_ingest.models.record import EventRecord
from airudder_ingest.record.recorder import EventRecorder
from airudder_ingest.storage.archive import (
    QUARANTINE_PREFIX,
    RAW_PREFIX,
    ArchiveReader,
    Envelope,
    archive_line,
    body_of,
    unpack_envelope,
)

SOURCE = "replay"
# Facts a model derives from a body; a replay reports those that differ from the stored event's.
FACT_FIELDS = tuple(f.name for f in fields(EventFacts) if f.name != "event_time")
# How the store gives back the facts that are not plain text (absent when empty).
_STORED_EMPTY: dict[str, Any] = {"results": {}, "unreadable": ()}
OUTCOMES = ("stored", "repaired", "unchanged", "invalid")


@dataclass(frozen=True)
class Delivery:
    """One delivery to replay: its archive line, and where it was read from."""

    origin: str  # `<archive object key>#<line number>`, or `table <pk> <sk>`
    line: Mapping[str, Any]
    from_archive: bool = False

    @property
    def quarantined(self) -> bool:
        return bool(self.line.get("quarantine_id"))


@dataclass(frozen=True)
class ReplayResult:
    origin: str  # Delivery.origin
    outcome: str  # one of OUTCOMES ("would store" / "would repair" on a dry run)
    webhook_type: str = ""
    event_id: str | None = None
    entity: str | None = None
    detail: str = ""
    differs: tuple[str, ...] = ()  # facts the current model reads differently from the stored event

    def as_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
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
    def __init__(
        self,
        recorder: EventRecorder,
        archive: ArchiveReader | None,
        decryption: PayloadDecryption | None = None,
        *,
        dry_run: bool = False,
    ) -> None:
        self.recorder = recorder
        self.store = recorder.store
        self.archive = archive
        self.decryption = decryption or PayloadDecryption.from_json("")
        self.dry_run = dry_run
        self._models = _models_by_type()

    # ------------------------------------------------------------------ what to replay

    def day_deliveries(
        self, day: str, webhook_type: str | None = None, *, quarantined: bool = False
    ) -> Iterator[Delivery]:
        """Every line of a day's archive objects (raw/, or quarantine/), one object at a time."""
        if self.archive is None:
            raise ValueError("a replay by day reads the archive: no bucket given")
        area = QUARANTINE_PREFIX if quarantined else RAW_PREFIX
        for key in self.archive.day_objects(day, webhook_type, area):
            for number, line in enumerate(self.archive.lines(key), start=1):
                yield Delivery(f"{key}#{number}", line, from_archive=True)

    def call_deliveries(self, call_id: str) -> list[Delivery]:
        """The events of a call (its partition), oldest first."""
        return [self._from_table(item) for item in self.store.entity_events("CALL", call_id, newest_first=False)]

    def quarantine_delivery(self, quarantine_id: str) -> Delivery | None:
        item = self.store.get_quarantine(quarantine_id)
        return self._from_table(item) if item else None

    def _from_table(self, item: Mapping[str, Any]) -> Delivery:
        if isinstance(item.get("envelope"), bytes | bytearray):
            envelope = unpack_envelope(bytes(item["envelope"]))
        else:  # a claim check: the envelope was too large for its item
            envelope = unpack_envelope(self.recorder.claims.get(str(item["envelope_key"])))
        return Delivery(f"table {item['pk']} {item['sk']}", archive_line(item, envelope))

    # ------------------------------------------------------------------ replaying one delivery

    def replay(self, delivery: Delivery) -> ReplayResult:
        line = delivery.line
        webhook_type = str(line.get("webhook_type") or "")
        try:
            rec, envelope = self._record(line, webhook_type)
        except _Invalid as exc:
            return ReplayResult(delivery.origin, "invalid", webhook_type, detail=str(exc))
        existing = self._stored_event(line, rec)
        if existing is not None:
            return self._known(delivery, rec, existing)
        if self.dry_run:
            return ReplayResult(delivery.origin, "would store", webhook_type, rec.event_id, rec.entity)
        # A raw line is in the archive already: the archiver must not write it again. A quarantined body
        # now accepted is a new event: the archiver archives it under raw/ from the stream.
        in_archive = delivery.from_archive and not delivery.quarantined
        outcome = self.recorder.store_record(rec, envelope, in_archive=in_archive)
        if delivery.quarantined:
            self.store.mark_quarantine_stored(str(line["quarantine_id"]), rec.event_id)
        result = "stored" if outcome.result == "stored" else "repaired"
        return ReplayResult(delivery.origin, result, webhook_type, rec.event_id, outcome.record.entity)

    def _stored_event(self, line: Mapping[str, Any], rec: EventRecord) -> dict[str, Any] | None:
        """The stored item of this event: at the key its line names (its entity and time as first
        stored, whatever the current model reads), else at the key the current model gives it."""
        if not line.get("quarantine_id") and line.get("entity_kind") and line.get("entity_id"):
            as_stored = replace(
                rec,
                entity_kind=str(line["entity_kind"]),
                entity_id=str(line["entity_id"]),
                event_time=str(line.get("event_time") or rec.event_time),
                time_source=str(line.get("time_source") or rec.time_source),
            )
            found = self.store.get_event_of(as_stored)
            if found is not None:
                return found
        return self.store.get_event_of(rec)

    def _known(self, delivery: Delivery, rec: EventRecord, existing: dict[str, Any]) -> ReplayResult:
        """The event is stored already: keep what it was stored with (times, source, facts); redo the
        state update and the recording link only when the state does not hold it yet."""
        stored, differs = _as_stored(rec, existing)
        result = partial(
            ReplayResult, delivery.origin, webhook_type=rec.webhook_type, event_id=rec.event_id, entity=stored.entity
        )
        if self.store.state_is_current(stored):
            return result("unchanged", differs=differs)
        if self.dry_run:
            return result("would repair", differs=differs)
        # The event item is there (written once): the rest of the recorder's steps, both idempotent.
        self.store.apply_state(stored)
        self.recorder.queue_recording(stored)
        return result("repaired", differs=differs)

    def _json_of(self, request: WebhookRequest, webhook_type: str) -> tuple[bytes | None, Any]:
        """(plaintext when the route decrypts, else None; the JSON value of the body or plaintext)."""
        try:
            plaintext = self.decryption.open(request, webhook_type)
        except DecryptionFailed as exc:
            raise _Invalid(f"body could not be decrypted: {exc}") from None
        try:
            value = json.loads((request.body if plaintext is None else plaintext).decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise _Invalid(f"body is not valid JSON: {exc}") from None
        return plaintext, value

    def _record(self, line: Mapping[str, Any], webhook_type: str) -> tuple[EventRecord, Envelope]:
        """Parse an archive line's body with the current model: the record the recorder stores, and the
        envelope it packs onto a new event item."""
        model = self._models.get(webhook_type)
        if model is None:
            raise _Invalid(f"no model for webhook type {webhook_type!r}")
        received_at = line.get("received_at")
        if not received_at:
            raise _Invalid("the archived delivery has no received_at")
        body = body_of(line)
        request = _request_of(line, body)
        plaintext, value = self._json_of(request, webhook_type)
        if not isinstance(value, dict) and not model.accepts_any_json:
            raise _Invalid(f"body of a {webhook_type} delivery is JSON but not an object")
        rec = self.recorder.build_record(
            webhook_type=webhook_type,
            route=request.route_path,
            value=value,
            facts=read_facts(model, value),
            received_at=str(received_at),
            source=SOURCE,
            request_id=request.request_id or None,
        )
        pull_only = line.get("pull_only")
        envelope = Envelope(
            path=request.raw_path,
            body=body,
            headers=request.headers,
            query=request.query,
            source_ip=request.source_ip,
            pull_only=dict(pull_only) if isinstance(pull_only, Mapping) else None,
            decoded=canonical_json(value) if plaintext is not None else None,
        )
        return rec, envelope


def _as_stored(rec: EventRecord, existing: Mapping[str, Any]) -> tuple[EventRecord, tuple[str, ...]]:
    """`rec` with what its stored event was stored with (times, source, facts), and the names of the
    facts the current model reads differently."""
    left_out = set(existing.get("left_out") or ())
    facts: dict[str, Any] = {name: _stored_fact(existing, name) for name in FACT_FIELDS}
    differs = tuple(name for name in FACT_FIELDS if name not in left_out and getattr(rec, name) != facts[name])
    facts["entity_kind"] = str(existing.get("entity_kind") or rec.entity_kind)
    facts["entity_id"] = str(existing.get("entity_id") or rec.entity_id)
    for name in left_out:  # too large for the item: the current reading stands in for it
        facts.pop(name, None)
    return replace(rec.timed_as(existing), source=str(existing.get("source") or rec.source), **facts), differs


def _request_of(line: Mapping[str, Any], body: bytes) -> WebhookRequest:
    """The request an archive line records, as the HTTP edge read it."""
    return WebhookRequest(
        body=body,
        headers=dict(line.get("headers") or {}),
        query=dict(line.get("query") or {}),
        route_path=str(line.get("route") or ""),
        raw_path=str(line.get("path") or ""),
        request_id=str(line.get("request_id") or ""),
        source_ip=str(line.get("source_ip") or ""),
    )


def _stored_fact(existing: Mapping[str, Any], name: str) -> Any:
    """A fact as the stored event holds it, in the type EventRecord uses."""
    value = existing.get(name)
    if name not in _STORED_EMPTY:
        return value
    if value is None:
        return _STORED_EMPTY[name]
    return tuple(value) if name == "unreadable" else dict(value)
