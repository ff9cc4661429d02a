"""Fan-out publisher: the table's stream in, every newly stored event out to EventBridge (see
airudder_ingest.streams.fanout). Partial batch failures are reported (ReportBatchItemFailures)."""

from airudder_ingest.base.observability import lambda_entry
from airudder_ingest.streams.fanout import EventPublisher

# Built during the init phase: settings and clients, no network.
publisher = EventPublisher.from_env()
lambda_handler = lambda_entry(lambda event, context: publisher.handle(event))
