"""Consumers of the table's stream: the archiver (S3) and the fan-out publisher (EventBridge)."""
