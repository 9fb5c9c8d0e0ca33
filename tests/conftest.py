"""Session-wide fixtures: paths to the shared real-world fixtures, and one Prefect test
harness (ephemeral API, PREFECT_HOME in a temp folder) for the tests that run flows.

Two lanes: `make test` runs everything; `make test-fast` (`-m "not slow"`) leaves out the tests
that start Prefect, the moto S3 server or Great Expectations. A test asking for one of the
fixtures below is marked slow here; a test that starts GX is marked in its module. In the fast
lane a test that starts one of them anyway fails and says so, so the lane stays fast.
"""
from __future__ import annotations

import os
import sys
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
os.environ.setdefault("KPDELIVER_DEBUG", "1")  # a bug in a `kpdeliver` subprocess keeps its traceback


FAST_LANE = "not slow"
SLOW_FIXTURES = {"prefect_harness", "s3_endpoint", "s3_bucket", "fault_proxy"}
STARTS_PROCESSES = {"prefect_harness": "a Prefect API server", "s3_endpoint": "the moto S3 server"}
SLOW_MODULES = ("prefect", "great_expectations", "moto", "expectations.worker")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


class FastLaneGuard:
    """Fails a test of the fast lane that starts a slow part after all."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_fixture_setup(self, fixturedef, request) -> None:
        # catches fixtures reached through request.getfixturevalue, which collection cannot see
        if fixturedef.argname in STARTS_PROCESSES:
            pytest.fail(f"the fast lane would start {STARTS_PROCESSES[fixturedef.argname]}: mark this test (or its "
                        f"parameter) slow", pytrace=False)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        before = set(sys.modules)
        yield
        loaded = [m for m in SLOW_MODULES if m in sys.modules and m not in before]
        if loaded:
            pytest.fail(f"{item.nodeid} imported {', '.join(loaded)} in the fast lane: mark it slow", pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    # a plugin, not conftest hooks: conftest hooks do not see session-scoped fixtures being set up
    if config.getoption("markexpr") == FAST_LANE:
        config.pluginmanager.register(FastLaneGuard(), "kpdeliver-fast-lane")


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
