"""Fan-out publisher: the table's stream in, every newly stored event out to EventBridge (see
airudder_ingest.streams.fanout). Partial batch failures are reported (ReportBatchItemFailures)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from airudder_ingest.streams.fanout import EventPublisher

logger = Logger()
metrics = Metrics()
# Built during the init phase: settings and clients, no network.
publisher = EventPublisher.from_env()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return publisher.handle(event)
