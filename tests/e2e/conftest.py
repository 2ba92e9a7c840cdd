"""Fixtures for the end-to-end tests; the helpers themselves live in ``_e2e.py``."""

from tests.e2e._e2e import _clean_env, servers, twistd  # noqa: F401  (pytest fixtures)
