"""Settings for the whole suite."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Property tests run the same examples every time (seeded from each test), with no time limit per example
# and no health check that measures speed: a busy machine never turns a pass into a failure.
# HYPOTHESIS_PROFILE=explore draws new examples on each run (for hunting bugs, not for `make test`).
settings.register_profile(
    "deterministic", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
