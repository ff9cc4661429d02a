"""The HTTP edge every webhook function runs: from API Gateway's event to AIRUDDER's answer.

  read raw body -> authenticate -> size check -> decode (decrypt) -> model -> record (recorder.py) -> 200 {}

Failures: a bad token is refused and stores nothing; a body we cannot use is quarantined (one item holding
the body and the reason) and answered 400/413; a failing AWS call answers 503 so that AIRUDDER retries,
and every step is idempotent so that the retry completes whatever the first attempt left undone.

The guarantee: once a request is authenticated, its raw bytes are kept whatever our code does with them.
Any other failure after authentication (a bug, a value we cannot represent) quarantines the body with
the reason and answers 400, the same on every retry; only a failing AWS call answers 5xx.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from botocore.exceptions import BotoCoreError, ClientError

from airudder_ingest.base.errors import (
    IngestError,
    InvalidPayload,
    PayloadTooLarge,
    RouteNotFound,
    StorageUnavailable,
    Unprocessable,
    failure_site,
)
from airudder_ingest.base.events import canonical_json, iso_utc
from airudder_ingest.base.observability import append_event_id
from airudder_ingest.base.settings import IngestSettings, get_settings
from airudder_ingest.edge.apigw import WebhookRequest, error_response, parse_event, respond
from airudder_ingest.edge.auth import TokenVerifier, presented_token
from airudder_ingest.models import EventFacts, WebhookModel, model_for, read_facts
from airudder_ingest.record.recorder import EventRecorder, Outcome
from airudder_ingest.storage.archive import Envelope

if TYPE_CHECKING:  # imported at run time only when a setting turns them on (cold start)
    from airudder_ingest.edge.decryption import PayloadDecryption
    from airudder_ingest.edge.signing import SignatureVerification

logger = Logger(child=True)
metrics = Metrics()


class WebhookEdge:
    def __init__(self, settings: IngestSettings, recorder: EventRecorder, verifier: TokenVerifier) -> None:
        self.settings = settings
        self.recorder = recorder
        self.verifier = verifier
        # Per-route callback checks, parsed once (cold start); both off, and not even imported, unless configured.
        self.signatures = signature_checks(settings.signature_verification)
        self.decryption = payload_decryption(settings.payload_decryption)

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> WebhookEdge:
        return cls(
            settings,
            EventRecorder.from_settings(settings),
            TokenVerifier(settings.token_secret_name, settings.token_cache_seconds),
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
        if self.signatures is not None:
            self.signatures.verify(request, model.webhook_type)
        plaintext = self._decrypted(request, model.webhook_type, received_at)
        value, facts = self._decode(request, model, received_at, plaintext)
        rec = self.recorder.build_record(
            webhook_type=model.webhook_type,
            route=request.route_path,
            value=value,
            facts=facts,
            received_at=received_at,
            source="webhook",
            request_id=request.request_id,
        )
        # Joins the logs: every later line carries the event id; the item (and so the published event)
        # carries the request id, the webhook lines' correlation_id.
        append_event_id(rec.event_id)
        decoded = canonical_json(value) if plaintext is not None else None
        return self.recorder.store_record(rec, _envelope(request, decoded=decoded))

    def _decrypted(self, request: WebhookRequest, webhook_type: str, received_at: str) -> bytes | None:
        """The plaintext of an encrypted route's body (None when the route is not encrypted). The
        ciphertext stays the body that is archived, or quarantined when it cannot be decrypted."""
        if self.decryption is None:
            return None
        from airudder_ingest.edge.decryption import DecryptionFailed  # loaded with self.decryption

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
            self._quarantine(request, model.webhook_type, received_at, InvalidPayload(f"body is not valid JSON: {exc}"))
        if not isinstance(value, dict) and not model.accepts_any_json:
            found = type(value).__name__ if value is not None else "null"
            self._quarantine(
                request, model.webhook_type, received_at, InvalidPayload(f"body is JSON but not an object ({found})")
            )
        # Any JSON object is a delivery: what the model cannot read is named in facts.unreadable.
        return value, read_facts(model, value)

    def _quarantine(self, request: WebhookRequest, webhook_type: str, received_at: str, error: IngestError) -> NoReturn:
        """Keep the body, record why, and answer with `error`. Raises, always."""
        error.quarantine_id = self.recorder.quarantine(
            _envelope(request),
            webhook_type=webhook_type,
            route=request.route_path,
            reason=error.message,
            status=error.status,
            received_at=received_at,
            request_id=request.request_id,
        )
        raise error


def signature_checks(setting: str) -> SignatureVerification | None:
    """SIGNATURE_VERIFICATION's checks, or None when the setting is blank (no route is signed)."""
    if not setting.strip():
        return None
    from airudder_ingest.edge.signing import SignatureVerification

    return SignatureVerification.from_json(setting)


def payload_decryption(setting: str) -> PayloadDecryption | None:
    """PAYLOAD_DECRYPTION's rules, or None when the setting is blank (no route is encrypted)."""
    if not setting.strip():
        return None
    from airudder_ingest.edge.decryption import PayloadDecryption

    return PayloadDecryption.from_json(setting)


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


def _envelope(request: WebhookRequest, *, decoded: str | None = None) -> Envelope:
    """What the archive keeps of a delivery: the body as received and where it came from."""
    return Envelope(
        path=request.raw_path,
        body=request.body,
        headers=request.headers,
        query=request.query,
        source_ip=request.source_ip,
        decoded=decoded,
    )


@functools.cache
def get_edge() -> WebhookEdge:
    return WebhookEdge.from_settings(get_settings())
