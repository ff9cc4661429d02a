"""Webhook receiver: every webhook function of template.yaml runs this handler; the API route it
is invoked on decides the webhook type (see airudder_ingest.models.ROUTES)."""

from typing import Any

from airudder_ingest.base.init_phase import init_phase

# Built during the init phase, which Lambda runs at full CPU: clients and settings, no network; the
# route's model is imported by the first delivery (models.ROUTES). No garbage collection meanwhile.
with init_phase():
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from airudder_ingest.base.observability import record_delivery
    from airudder_ingest.edge.webhook import get_edge

    logger = Logger()
    metrics = Metrics()
    edge = get_edge()


@metrics.log_metrics
# correlation_id = API Gateway's request id on every log line of the delivery (README, "Dashboard and logs").
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    answer = edge.handle(event)
    record_delivery(event, answer)
    return answer
