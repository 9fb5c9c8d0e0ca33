"""Process settings for orchestrated runs: Prefect's ephemeral API with its home inside the
work folder (nothing leaks into the user's home), and the settings that avoid known traps on
small machines. Call before the first `import prefect`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def configure_prefect(work_dir: str | Path) -> None:
    home = Path(work_dir).resolve() / ".prefect"
    home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # the server's telemetry: offline it logs "Failed to send"
        "DO_NOT_TRACK": "1",  # the client's telemetry (and its first-run notice)
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


@contextmanager
def failures_said() -> Iterator[None]:
    """The one place the command line turns a failure kpdeliver expects (a KpdeliverError: a store's
    disk full, read-only, access denied or unreachable; a config, input, tool or release refused)
    into one sentence and its exit code (kpdeliver.errors `said`: the sentence the flow run's
    Failed state carries too). Every command runs inside it (LazyGroup)."""
    from kpdeliver.errors import KpdeliverError, said

    try:
        yield
    except KpdeliverError as e:
        from kpdeliver.cli.output import fail  # rich: imported only when there is something to say

        fail(*said(e))
