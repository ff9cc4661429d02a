"""Recording an event: what the webhook edge, the scheduled sync and a replay all do with a body they read.

  build the record (event id, UTC time, normalised phone) -> one conditional write of the event item with
  its packed envelope (the archive's copy comes from the table's stream) -> the entity's state -> queue
  the recording link

Every step is idempotent: a repeat finds the event (a duplicate), re-applies the conditional state and
re-queues the link, so a retry after any failure completes what the first attempt left.
A quarantine is one write too: the item holds the envelope and the reason.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from airudder_ingest.base import aws
from airudder_ingest.base.events import (
    event_id,
    iso_utc,
    normalise_phone,
    parse_offset,
    raw_digest,
    to_utc,
)
from airudder_ingest.base.limits import fact_fits
from airudder_ingest.base.settings import StoreSettings
from airudder_ingest.models import EventFacts
from airudder_ingest.models.record import EventRecord
from airudder_ingest.record.recording_queue import RecordingQueue
from airudder_ingest.storage.archive import ClaimChecks, Envelope, claim_key
from airudder_ingest.storage.store import MAX_INLINE_ENVELOPE_BYTES, EventStore


@dataclass(frozen=True)
class Outcome:
    result: str  # "stored" or "duplicate"
    record: EventRecord
    state_applied: bool
    recording_queued: bool


class EventRecorder:
    def __init__(
        self,
        settings: StoreSettings,
        store: EventStore,
        claims: ClaimChecks,
        recordings: RecordingQueue | None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.claims = claims
        self.recordings = recordings
        self._naive_offset = parse_offset(settings.naive_time_offset)

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, queue_recordings: bool = True) -> EventRecorder:
        store = EventStore(
            settings.table_name,
            aws.client("dynamodb"),
            parent_shards=settings.parent_shards,
            event_ttl_days=settings.event_ttl_days,
        )
        recordings = (
            RecordingQueue(settings.recordings_queue_url, aws.client("sqs"))
            if settings.recordings_queue_url and queue_recordings
            else None
        )
        return cls(settings, store, ClaimChecks(settings.bucket_name, aws.client("s3")), recordings)

    # ------------------------------------------------------------------ records

    def build_record(
        self,
        *,
        webhook_type: str,
        route: str,
        value: Any,
        facts: EventFacts,
        received_at: str,
        source: str,
        request_id: str | None = None,
    ) -> EventRecord:
        eid = event_id(webhook_type, value)
        unreadable = facts.unreadable
        try:
            moment = to_utc(facts.event_time, self._naive_offset)
        except (ValueError, OverflowError, OSError):  # e.g. "soon", 1e400, year 300000
            moment = None  # an unreadable time is kept in the body; the event is filed at receipt
            unreadable = (*unreadable, "event_time")
        return EventRecord(
            event_id=eid,
            webhook_type=webhook_type,
            route=route,
            source=source,
            received_at=received_at,
            event_time=iso_utc(moment) if moment else received_at,
            time_source="payload" if moment else "received",
            entity_kind=facts.entity_kind,
            entity_id=facts.entity_id or eid,
            status=facts.status,
            phone=normalise_phone(facts.phone, self.settings.default_country_code),
            case_id=facts.case_id,
            workflow_id=facts.workflow_id,
            nodetask_id=facts.nodetask_id,
            task_id=facts.task_id,
            call_id=facts.call_id,
            recording_url=facts.recording_url,
            agent=facts.agent,
            results=dict(facts.results),
            unreadable=unreadable,
            request_id=request_id or None,
        )

    def store_record(self, rec: EventRecord, envelope: Envelope, *, in_archive: bool = False) -> Outcome:
        """Write the event once with its envelope, then its entity's state, then queue its recording.
        `in_archive`: the envelope came from the archive (a replay), so the archiver leaves it out."""
        blob, key = self._packed(envelope, rec.event_id)
        put = self.store.put_event(rec, blob, key, in_archive=in_archive)
        if not put.stored and put.existing:
            rec = rec.timed_as(put.existing)
        applied = self.store.apply_state(rec)
        queued = self.queue_recording(rec)
        return Outcome("stored" if put.stored else "duplicate", rec, applied, queued)

    def queue_recording(self, rec: EventRecord) -> bool:
        if rec.recording_url and self.recordings is not None and recording_fits_queue(rec):
            self.recordings.send(rec)
            return True
        return False

    # ------------------------------------------------------------------ quarantine

    def quarantine(
        self,
        envelope: Envelope,
        *,
        webhook_type: str,
        route: str,
        reason: str,
        status: int,
        received_at: str,
        source: str = "webhook",
        request_id: str | None = None,
    ) -> str:
        """Keep a delivery that is not ingested, with why; returns its id (the body's digest). A
        redelivery of the same body overwrites the same item."""
        digest = raw_digest(envelope.body)[:32]
        blob, key = self._packed(envelope, f"q-{digest}")
        self.store.put_quarantine(
            digest=digest,
            webhook_type=webhook_type,
            route=route,
            path=envelope.path,
            reason=reason,
            status=status,
            received_at=received_at,
            size=len(envelope.body),
            envelope=blob,
            envelope_key=key,
            source=source,
            request_id=request_id,
        )
        return digest

    def _packed(self, envelope: Envelope, name: str) -> tuple[bytes | None, str | None]:
        """The packed envelope for the item, or, when too large for it, the key of its claim check (in S3
        before the item that points to it is written)."""
        blob = envelope.pack()
        if len(blob) <= MAX_INLINE_ENVELOPE_BYTES:
            return blob, None
        key = claim_key(name)
        self.claims.put(key, blob)
        return None, key


def recording_fits_queue(rec: EventRecord) -> bool:
    """A recording request fits a queue message (256 KB) when its link and call id are facts of a normal
    size; a link of more is no link we could fetch, and stays in the body."""
    return fact_fits(rec.recording_url) and fact_fits(rec.call_id) and fact_fits(rec.entity_id)


@functools.cache
def get_recorder() -> EventRecorder:
    from airudder_ingest.base.settings import get_settings

    return EventRecorder.from_settings(get_settings())
