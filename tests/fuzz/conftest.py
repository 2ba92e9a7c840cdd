"""Hypothesis settings for the fuzzers: a fixed budget, so the suite stays fast in CI.

``HYPOTHESIS_PROFILE=deep`` runs each fuzzer much longer (for a session hunting
bugs); the default ``ci`` profile is derandomized, so a failure in CI is
reproduced by running the same test again.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", max_examples=20_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
