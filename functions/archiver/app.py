"""Archiver: the table's stream in, gzip JSON Lines per webhook type and day out (see
airudder_ingest.streams.archiver). A batch that fails is retried whole: no partial batch answers."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from airudder_ingest.streams.archiver import Archiver

logger = Logger()
metrics = Metrics()
# Built during the init phase: settings and the S3 client, no network.
archiver = Archiver.from_env()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return archiver.handle(event)
