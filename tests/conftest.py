"""Session-wide fixtures: paths to the shared real-world fixtures, and one Prefect test
harness (ephemeral API, PREFECT_HOME in a temp folder) for the tests that run flows.

Two lanes: `make test` runs everything and fails when any test is skipped (KPDELIVER_NO_SKIPS=1; a
tool the suite needs that is missing fails the tests asking for it, never skips them); `make test-fast`
(`-m "not slow"`) leaves out the tests that start Prefect, the moto S3 server, Great Expectations,
Ultralytics or chromium. A test asking for one of the
fixtures below is marked slow here; a test that starts GX is marked in its module. In the fast
lane a test that starts one of them anyway fails and says so, so the lane stays fast.
"""

from __future__ import annotations

import os
import shutil
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
SLOW_FIXTURES = {
    "prefect_harness",
    "s3_endpoint",
    "s3_bucket",
    "fault_proxy",
    "ultralytics_python",
    "chromium",
}
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
            pytest.fail(
                f"the fast lane would start {STARTS_PROCESSES[fixturedef.argname]}: mark this test (or its "
                f"parameter) slow",
                pytrace=False,
            )

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        before = set(sys.modules)
        yield
        loaded = [m for m in SLOW_MODULES if m in sys.modules and m not in before]
        if loaded:
            pytest.fail(
                f"{item.nodeid} imported {', '.join(loaded)} in the fast lane: mark it slow", pytrace=False
            )


class NoSkips:
    """`make test` sets KPDELIVER_NO_SKIPS=1: a skipped test (or module) fails the run, named in the summary.
    An expected failure (xfail) is not a skip; a test left out by -m or -k is not run at all."""

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def _note(self, report) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            where = report.longrepr[0] if isinstance(report.longrepr, tuple) else ""
            why = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.skipped.append(f"{report.nodeid or where}: {why}")

    def pytest_runtest_logreport(self, report) -> None:
        self._note(report)

    def pytest_collectreport(self, report) -> None:
        self._note(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.skipped and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.skipped:
            terminalreporter.section("skipped tests fail this run (KPDELIVER_NO_SKIPS=1)", red=True)
            for line in self.skipped:
                terminalreporter.line(line)


def pytest_configure(config: pytest.Config) -> None:
    # a plugin, not conftest hooks: conftest hooks do not see session-scoped fixtures being set up
    if config.getoption("markexpr") == FAST_LANE:
        config.pluginmanager.register(FastLaneGuard(), "kpdeliver-fast-lane")
    if os.environ.get("KPDELIVER_NO_SKIPS") == "1":
        config.pluginmanager.register(NoSkips(), "kpdeliver-no-skips")


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


def _tool(variable: str, default: Path, what: str, make_target: str, inside: str = "") -> Path:
    """A tool the suite needs, at $`variable` (set by `make test`) or at `default` in this checkout
    (plus `inside`): missing, the test asking for it fails and says how to get it."""
    path = Path(os.environ.get(variable) or default) / inside
    if not path.exists():
        pytest.fail(
            f"{what} not found at {path}: `{make_target}` installs it (or set {variable})", pytrace=False
        )
    return path


@pytest.fixture(scope="session")
def ultralytics_python() -> Path:
    """The Python of the Ultralytics venv (the consumer check of YOLO trees), built by `make bench-deps`
    in the Makefile's WORK folder."""
    return _tool(
        "KPDELIVER_ULTRA_VENV",
        ROOT / ".work" / "ultra-venv",
        "the Ultralytics venv",
        "make bench-deps",
        inside="bin/python",
    )


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium (the report's browser test), installed by `make test-deps`."""
    return _tool(
        "KPDELIVER_CHROMIUM",
        Path(shutil.which("chromium") or "/usr/bin/chromium"),
        "chromium",
        "make test-deps (infra/ci/install-chromium.sh)",
    )
