"""Archiver: the table's stream in, gzip JSON Lines per webhook type and day out (see
airudder_ingest.streams.archiver). A batch that fails is retried whole: no partial batch answers."""

from airudder_ingest.base.observability import lambda_entry
from airudder_ingest.streams.archiver import Archiver

# Built during the init phase: settings and the S3 client, no network.
archiver = Archiver.from_env()
lambda_handler = lambda_entry(lambda event, context: archiver.handle(event))
