"""What operators see of a delivery: the per-family delivery metric of the dashboard, and the keys that
join a delivery's log lines (README, "Dashboard and logs").

Every webhook log line carries the API request id as ``correlation_id`` (set by the handler from
``requestContext.requestId``) and, once it is known, the event id; the publisher's lines carry both too,
so one Logs Insights search over the log groups finds a delivery's whole path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.exceptions import OrphanedChildLoggerError
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

logger = Logger(child=True)

DELIVERY_METRIC = "Deliveries"
# The family is the first path segment after /webhooks/; anything else counts as "unknown", so a sender
# posting made-up paths cannot create new metrics (each dimension value is a billed metric).
FAMILIES = ("workflow", "collection", "telemarketing", "infocheck", "leadgen", "chatbot")
OUTCOMES = ("stored", "duplicate", "quarantined", "refused", "failed")


def family_of(path: str | None) -> str:
    parts = (path or "").strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "webhooks" and parts[1] in FAMILIES:
        return parts[1]
    return "unknown"


def outcome_of(answer: Mapping[str, Any]) -> str:
    """stored / duplicate (200), quarantined (400, 413: body kept), refused (401, 404: nothing stored),
    failed (5xx: AIRUDDER retries)."""
    status = int(answer.get("statusCode") or 500)
    if status == 200:
        outcome = str((answer.get("headers") or {}).get("x-ingest-outcome") or "stored")
        return outcome if outcome in OUTCOMES else "stored"
    if status >= 500:
        return "failed"
    if status in (400, 413):
        return "quarantined"
    return "refused"


def record_delivery(event: Mapping[str, Any], answer: Mapping[str, Any]) -> None:
    """One `Deliveries` data point with the dimensions family and outcome (its own EMF line, so the
    service-level metrics and their alarms keep their one dimension). single_metric prints its line at
    once and does not heed POWERTOOLS_METRICS_DISABLED (which `make demo` sets): checked here."""
    if is_metrics_disabled():
        return
    with single_metric(name=DELIVERY_METRIC, unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="family", value=family_of(event.get("rawPath")))
        metric.add_dimension(name="outcome", value=outcome_of(answer))


def append_event_id(event_id: str) -> None:
    """Put the event id on every later log line of this invocation. A no-op where no handler's Logger
    exists (the CLI, replay, unit tests): there is nothing to join up."""
    with suppress(OrphanedChildLoggerError):
        logger.append_keys(event_id=event_id)


def delivery_log_keys(event_id: str | None, request_id: str | None) -> None:
    """For consumers that handle many deliveries per invocation (the recordings queue): the current
    message's event id and request id (as correlation_id) on every later line; None removes a key."""
    with suppress(OrphanedChildLoggerError):
        present = {k: v for k, v in {"event_id": event_id, "correlation_id": request_id}.items() if v}
        if present:
            logger.append_keys(**present)
        absent = [k for k in ("event_id", "correlation_id") if k not in present]
        if absent:
            logger.remove_keys(absent)


def lambda_entry(handle: Handler) -> Handler:
    """`handle` as a function's Lambda handler: the invocation's context on every log line (cleared
    between invocations) and the metrics flushed after each one. The stream, queue and schedule functions
    are this around their layer object; the webhook's handler adds its correlation id and delivery metric."""
    handler_logger = Logger()
    metrics = Metrics()
    wrapped: Handler = metrics.log_metrics(handler_logger.inject_lambda_context(clear_state=True)(handle))
    return wrapped
