"""Shared test configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLES = SHARED / "tlsrpt-samples"

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The shared real-world TLS-RPT samples (../shared/tlsrpt-samples)."""
    if not SAMPLES.is_dir():
        pytest.skip(f"{SAMPLES} not found: the tests need ../shared beside the checkout")
    return SAMPLES
