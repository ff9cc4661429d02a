"""The ingest pipeline every webhook handler runs:

  read raw body -> authenticate -> size check -> decode -> parse (model) -> archive (S3)
  -> store event once (DynamoDB) -> apply entity state -> queue recording link -> 200 {}

Failures: a bad token is refused and stores nothing; a body we cannot use is quarantined (kept in S3,
listed in DynamoDB) and answered 400/413; a failing AWS call answers 503 so that AIRUDDER retries, and
every step is idempotent so that the retry completes whatever the first attempt left undone.

The guarantee: once a request is authenticated, its raw bytes are kept whatever our code does with them.
Any other failure after authentication (a bug, a value we cannot represent) quarantines the body with
the reason and answers 400, the same on every retry; only a failing AWS call answers 5xx.
"""

from __future__ import annotations

import functools
import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NoReturn

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from botocore.exceptions import BotoCoreError, ClientError

from . import aws
from .apigw import WebhookRequest, error_response, parse_event, respond
from .archive import Envelope, RawArchive, quarantine_key, raw_key
from .auth import TokenVerifier, presented_token
from .decryption import DecryptionFailed, PayloadDecryption
from .errors import IngestError, InvalidPayload, PayloadTooLarge, RouteNotFound, StorageUnavailable, Unprocessable
from .events import canonical_json, event_id, iso_utc, normalise_phone, parse_offset, raw_digest, to_utc
from .limits import fact_fits
from .models import EventFacts, WebhookModel, model_for, read_facts
from .observability import append_event_id
from .recording_queue import RecordingQueue
from .settings import IngestSettings, get_settings
from .signing import SignatureVerification
from .store import EventRecord, EventStore

logger = Logger(child=True)
metrics = Metrics()


@dataclass(frozen=True)
class Outcome:
    result: str  # "stored" or "duplicate"
    record: EventRecord
    state_applied: bool
    recording_queued: bool


class IngestPipeline:
    def __init__(
        self,
        settings: IngestSettings,
        store: EventStore,
        archive: RawArchive,
        verifier: TokenVerifier,
        recordings: RecordingQueue | None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.archive = archive
        self.verifier = verifier
        self.recordings = recordings
        self._naive_offset = parse_offset(settings.naive_time_offset)
        # Per-route callback checks, parsed once (cold start); both off unless configured.
        self.signatures = SignatureVerification.from_json(settings.signature_verification)
        self.decryption = PayloadDecryption.from_json(settings.payload_decryption)

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> IngestPipeline:
        store = EventStore(
            settings.table_name,
            aws.client("dynamodb"),
            day_shards=settings.day_shards,
            parent_shards=settings.parent_shards,
            event_ttl_days=settings.event_ttl_days,
        )
        recordings = (
            RecordingQueue(settings.recordings_queue_url, aws.client("sqs"))
            if settings.recordings_queue_url
            else None
        )
        return cls(
            settings,
            store,
            RawArchive(settings.bucket_name, aws.client("s3")),
            TokenVerifier(settings.token_secret_name, settings.token_cache_seconds),
            recordings,
        )

    # ------------------------------------------------------------------ the HTTP edge

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """An API Gateway v2 event in, the answer for AIRUDDER out. Never raises."""
        try:
            request = parse_event(event)
            outcome = self.ingest(request)
        except IngestError as error:
            return self._refused(error)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("storage call failed", extra={"error": type(exc).__name__})
            return self._refused(StorageUnavailable("could not store the delivery; retry later"))
        except Exception:
            logger.exception("unexpected failure while ingesting a delivery")
            metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
            return respond(500, {"error": "internal_error", "message": "unexpected failure; retry later"})
        metrics.add_metric(name="Received", unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name="Stored" if outcome.result == "stored" else "Duplicates", unit=MetricUnit.Count, value=1
        )
        if not outcome.state_applied:
            metrics.add_metric(name="StaleStateSkipped", unit=MetricUnit.Count, value=1)
        if outcome.result == "stored" and outcome.record.unreadable:
            _count_unreadable(outcome.record.webhook_type)
        rec = outcome.record
        logger.info(
            f"delivery {outcome.result}",
            extra={
                "webhook_type": rec.webhook_type,
                "event_id": rec.event_id,
                "entity_kind": rec.entity_kind,
                "state_applied": outcome.state_applied,
                "recording_queued": outcome.recording_queued,
            },
        )
        return respond(200, {}, {"x-ingest-outcome": outcome.result, "x-event-id": rec.event_id})

    def _refused(self, error: IngestError) -> dict[str, Any]:
        metrics.add_metric(name="Received", unit=MetricUnit.Count, value=1)
        if error.status >= 500:
            metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
        elif error.quarantine_id:
            metrics.add_metric(name="Quarantined", unit=MetricUnit.Count, value=1)
        else:
            metrics.add_metric(name="Rejected", unit=MetricUnit.Count, value=1)
        # Only the fact and the reason: never the token, the body or who it is about.
        logger.info("delivery refused", extra={"status": error.status, "error": error.code, "reason": error.message})
        return error_response(error)

    # ------------------------------------------------------------------ the steps

    def ingest(self, request: WebhookRequest) -> Outcome:
        self.verifier.verify(presented_token(request.query, request.headers))
        model = model_for(request.route_path, request.path_params)
        if model is None:
            raise RouteNotFound(f"no webhook is configured at {request.raw_path}")
        received_at = iso_utc(datetime.fromtimestamp(request.received_ms / 1000, UTC))
        try:
            return self._ingest_authenticated(request, model, received_at)
        except (IngestError, ClientError, BotoCoreError):
            raise
        except Exception as exc:
            # The last resort of the guarantee: keep the bytes, say why, answer what every retry will.
            where = failure_site(exc)
            logger.warning("delivery could not be processed", extra={"error": type(exc).__name__, "where": where})
            metrics.add_metric(name="Unprocessable", unit=MetricUnit.Count, value=1)
            reason = f"the delivery could not be processed ({type(exc).__name__} in {where}); kept for replay"
            self._quarantine(request, model.webhook_type, received_at, Unprocessable(reason))

    def _ingest_authenticated(self, request: WebhookRequest, model: type[WebhookModel], received_at: str) -> Outcome:
        if len(request.body) > self.settings.max_body_bytes:
            self._quarantine(
                request,
                model.webhook_type,
                received_at,
                PayloadTooLarge(
                    f"body of {len(request.body)} bytes is over the limit of {self.settings.max_body_bytes}"
                ),
            )
        if request.body_error:
            self._quarantine(request, model.webhook_type, received_at, InvalidPayload(request.body_error))
        self.signatures.verify(request, model.webhook_type)
        plaintext = self._decrypted(request, model.webhook_type, received_at)
        value, facts = self._decode(request, model, received_at, plaintext)
        rec = self.build_record(
            webhook_type=model.webhook_type,
            route=request.route_path,
            value=value,
            facts=facts,
            received_at=received_at,
            source="webhook",
        )
        # Joins the logs: every later line carries the event id; the item (and so the published event)
        # carries the request id, the webhook lines' correlation_id.
        append_event_id(rec.event_id)
        rec = replace(rec, request_id=request.request_id or None)
        self.archive.put(
            rec.archive_key,
            _envelope(request, rec.webhook_type, received_at, event_id=rec.event_id, event_time=rec.event_time),
        )
        return self.store_record(rec)

    def _decrypted(self, request: WebhookRequest, webhook_type: str, received_at: str) -> bytes | None:
        """The plaintext of an encrypted route's body (None when the route is not encrypted). The
        ciphertext stays the body that is archived, or quarantined when it cannot be decrypted."""
        try:
            return self.decryption.open(request, webhook_type)
        except DecryptionFailed as exc:
            self._quarantine(request, webhook_type, received_at, InvalidPayload(f"body could not be decrypted: {exc}"))

    def _decode(
        self, request: WebhookRequest, model: type[WebhookModel], received_at: str, plaintext: bytes | None = None
    ) -> tuple[Any, EventFacts]:
        try:
            value = json.loads((request.body if plaintext is None else plaintext).decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            self._quarantine(
                request, model.webhook_type, received_at, InvalidPayload(f"body is not valid JSON: {exc}")
            )
        if not isinstance(value, dict) and not model.accepts_any_json:
            found = type(value).__name__ if value is not None else "null"
            self._quarantine(
                request, model.webhook_type, received_at, InvalidPayload(f"body is JSON but not an object ({found})")
            )
        # Any JSON object is a delivery: what the model cannot read is named in facts.unreadable.
        return value, read_facts(model, value)

    def _quarantine(self, request: WebhookRequest, webhook_type: str, received_at: str, error: IngestError) -> NoReturn:
        """Keep the body, record why, and answer with `error`. Raises, always."""
        digest = raw_digest(request.body)[:32]
        key = quarantine_key(webhook_type, received_at[:10], digest)
        self.archive.put(key, _envelope(request, webhook_type, received_at, reason=error.message))
        self.store.put_quarantine(
            digest=digest,
            webhook_type=webhook_type,
            route=request.route_path,
            path=request.raw_path,
            reason=error.message,
            status=error.status,
            received_at=received_at,
            archive_key=key,
            size=len(request.body),
        )
        error.quarantine_id = digest
        raise error

    # ------------------------------------------------------------------ shared with sync and replay

    def build_record(
        self,
        *,
        webhook_type: str,
        route: str,
        value: Any,
        facts: EventFacts,
        received_at: str,
        source: str,
    ) -> EventRecord:
        eid = event_id(webhook_type, value)
        unreadable = facts.unreadable
        try:
            moment = to_utc(facts.event_time, self._naive_offset)
        except (ValueError, OverflowError, OSError):  # e.g. "soon", 1e400, year 300000
            moment = None  # an unreadable time is kept in the body; the event is filed at receipt
            unreadable = (*unreadable, "event_time")
        event_time = iso_utc(moment) if moment else received_at
        return EventRecord(
            event_id=eid,
            webhook_type=webhook_type,
            route=route,
            source=source,
            received_at=received_at,
            event_time=event_time,
            time_source="payload" if moment else "received",
            entity_kind=facts.entity_kind,
            entity_id=facts.entity_id or eid,
            data=canonical_json(value),
            archive_key=raw_key(webhook_type, event_time[:10], eid),
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
        )

    def store_record(self, rec: EventRecord) -> Outcome:
        """Write an archived event: once as an event, then as its entity's state, then queue its
        recording. Safe to repeat: a repeat finds the event, and redoes the idempotent rest."""
        put = self.store.put_event(rec)
        if not put.stored and put.existing:
            rec = rec.timed_as(put.existing)
        applied = self.store.apply_state(rec)
        queued = False
        if rec.recording_url and self.recordings is not None and recording_fits_queue(rec):
            self.recordings.send(rec)
            queued = True
        return Outcome("stored" if put.stored else "duplicate", rec, applied, queued)


def recording_fits_queue(rec: EventRecord) -> bool:
    """A recording request fits a queue message (256 KB) when its link and call id are facts of a normal
    size; a link of more is no link we could fetch, and stays in the body."""
    return fact_fits(rec.recording_url) and fact_fits(rec.call_id) and fact_fits(rec.entity_id)


def failure_site(exc: BaseException) -> str:
    """Where an exception was raised (module:function:line): enough to find the bug, without the
    exception's message (which may quote the body)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    frame = frames[-1]
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.name}:{frame.lineno}"


def _count_unreadable(webhook_type: str) -> None:
    """One `Unreadable` data point with the webhook type as a dimension (plus the service). A metric
    of its own (EMF line printed now), so that the function's other metrics keep their dimensions."""
    if not metrics.namespace or is_metrics_disabled():
        return  # outside Lambda (tests, the CLI's replay): no namespace, nothing to publish; or turned off
    with single_metric(
        name="Unreadable",
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions={**({"service": metrics.service} if metrics.service else {}), **metrics.default_dimensions},
    ) as metric:
        metric.add_dimension(name="webhook_type", value=webhook_type)


def _envelope(request: WebhookRequest, webhook_type: str, received_at: str, **extra: Any) -> Envelope:
    """What the archive keeps of a delivery: the body as received and where it came from."""
    return Envelope(
        webhook_type=webhook_type,
        route=request.route_path,
        path=request.raw_path,
        received_at=received_at,
        body=request.body,
        raw_sha256=raw_digest(request.body),
        headers=request.headers,
        query=request.query,
        source_ip=request.source_ip,
        request_id=request.request_id,
        **extra,
    )


@functools.cache
def get_pipeline() -> IngestPipeline:
    return IngestPipeline.from_settings(get_settings())
