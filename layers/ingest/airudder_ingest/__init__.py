"""Shared ingest logic for the AIRUDDER webhook stack (deployed as a Lambda layer)."""
