"""Shared settings for the pure-core suite: hypothesis profiles.

`CI=1` (any non-empty value) loads the "ci" profile: thousands of examples per property.
Locally the "dev" profile keeps the suite quick. `HYPOTHESIS_PROFILE` overrides both
("deep": 20,000 examples, for an occasional long hunt).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(  # occasional long hunts: HYPOTHESIS_PROFILE=deep
    "deep",
    max_examples=20000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
