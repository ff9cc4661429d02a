"""Recordings consumer: copies each recording link of the recordings queue into the archive bucket
(see airudder_ingest.recordings.copier). Partial batch failures are reported (ReportBatchItemFailures)."""

from airudder_ingest.base.observability import lambda_entry
from airudder_ingest.recordings.copier import RecordingsConsumer

# Built during the init phase: settings and clients, no network.
consumer = RecordingsConsumer.from_env()
lambda_handler = lambda_entry(consumer.handle)
