"""Demonstrations on the local stack: `make demo` (python -m tools.demo), `make serve` (tools.demo.serve),
the sync demo and the fan-out bus subscription they use."""
