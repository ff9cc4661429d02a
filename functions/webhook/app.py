"""Webhook receiver: every webhook function of template.yaml runs this handler; the API route it
is invoked on decides the webhook type (see airudder_ingest.models.ROUTES)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from airudder_ingest.pipeline import get_pipeline

logger = Logger()
metrics = Metrics()
# Built during the init phase, which Lambda runs at full CPU: clients and settings, no network.
pipeline = get_pipeline()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return pipeline.handle(event)
