"""Session-wide fixtures: paths to the shared real-world fixtures, and one Prefect test
harness (ephemeral API, PREFECT_HOME in a temp folder) for the tests that run flows."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["tests.s3_server"]  # moto_server on loopback + fault proxy (S3 tests)

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = ROOT.parent / "shared" / "fixtures" / "external"

_PREFECT_HOME = tempfile.mkdtemp(prefix="kpdeliver-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def external() -> Path:
    if not EXTERNAL.is_dir():
        pytest.fail(f"shared fixtures not found at {EXTERNAL} (CI puts ../shared beside the clone)")
    return EXTERNAL


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
