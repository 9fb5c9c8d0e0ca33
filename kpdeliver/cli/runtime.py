"""Process settings for orchestrated runs: Prefect's ephemeral API with its home inside the
work folder (nothing leaks into the user's home), and the settings that avoid known traps on
small machines. Call before the first `import prefect`."""
from __future__ import annotations

import os
from pathlib import Path


def configure_prefect(work_dir: str | Path) -> None:
    home = Path(work_dir).resolve() / ".prefect"
    home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
