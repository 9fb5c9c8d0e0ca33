"""Offline, Prefect's telemetry says "Failed to send telemetry": the CLI's runs (and the temporary
server a run starts) send none."""

from __future__ import annotations

KEYS = (
    "DO_NOT_TRACK",
    "PREFECT_SERVER_ANALYTICS_ENABLED",
    "PREFECT_HOME",
    "PREFECT_LOGGING_LEVEL",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT",
)


def test_the_cli_turns_prefects_client_and_server_telemetry_off(monkeypatch, tmp_path):
    from prefect._internal.analytics.enabled import is_telemetry_enabled
    from prefect.settings import Settings

    from kpdeliver.cli.runtime import configure_prefect

    for key in KEYS:
        monkeypatch.delenv(key, raising=False)  # restored after the test
    monkeypatch.setattr("prefect._internal.analytics.enabled.is_ci_environment", lambda: False)
    assert is_telemetry_enabled()  # what a fresh shell gets
    configure_prefect(tmp_path)
    assert not is_telemetry_enabled()
    assert Settings().server.analytics_enabled is False
