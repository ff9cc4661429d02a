"""Scheduled sync: reads AIRUDDER's Workflow call records back and stores what the webhooks missed
(see airudder_ingest.sync.job). Invoked by an EventBridge schedule; the event's content is not used."""

from airudder_ingest.base.observability import lambda_entry
from airudder_ingest.sync.job import WorkflowSync

# Built during the init phase: settings and clients, no network (the API secret is read on first use).
job = WorkflowSync.from_env()
lambda_handler = lambda_entry(job.handle)
