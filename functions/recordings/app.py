"""Recordings consumer: copies each recording link of the recordings queue into the archive bucket
(see airudder_ingest.recordings.copier). Partial batch failures are reported (ReportBatchItemFailures)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from airudder_ingest.recordings.copier import RecordingsConsumer

logger = Logger()
metrics = Metrics()
# Built during the init phase: settings and clients, no network.
consumer = RecordingsConsumer.from_env()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.handle(event, context)
