"""Operator tools (the airudder-data CLI, export, replay, rebuild, redrive): installed by the project,
never deployed in the Lambda layer; they import the layer's airudder_ingest."""
