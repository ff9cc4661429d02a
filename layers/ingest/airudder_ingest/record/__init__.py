"""Recording an event: the one write, the entity's state, the recording link (webhooks, sync, replay)."""
