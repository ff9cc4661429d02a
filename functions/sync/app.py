"""Scheduled sync: reads AIRUDDER's Workflow call records back and stores what the webhooks missed
(see airudder_ingest.sync.job). Invoked by an EventBridge schedule; the event's content is not used."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from airudder_ingest.sync.job import WorkflowSync

logger = Logger()
metrics = Metrics()
# Built during the init phase: settings and clients, no network (the API secret is read on first use).
job = WorkflowSync.from_env()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return job.handle(event, context)
