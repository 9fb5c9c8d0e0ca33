"""Process settings for orchestrated runs: Prefect's ephemeral API with its home inside the
work folder (nothing leaks into the user's home), and the settings that avoid known traps on
small machines. Call before the first `import prefect`."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from kpdeliver.cli.output import fail


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
def store_failures_said() -> Iterator[None]:
    """The one place a store failure (a StorageError: disk full, read-only, permission, access
    denied, changed under us, unreachable, no credentials) becomes one sentence and exit 2: the
    sentence the flow run's Failed state carries too."""
    from kpdeliver.storage import StorageError
    from kpdeliver.storage.errors import describe

    try:
        yield
    except StorageError as e:
        fail(describe(e))
