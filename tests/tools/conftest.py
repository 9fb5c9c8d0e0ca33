"""A real Label Studio for the session: started from its own venv (created when missing, so CI
runs these tests instead of skipping them) on a free loopback port, on a private copy of the
cached migrated template database, and stopped at the end.

KPDELIVER_LS_VENV and KPDELIVER_LS_TEMPLATE move the venv and the template (CI caches both).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("ls_server", ROOT / "infra" / "label-studio" / "ls_server.py")
ls_server = sys.modules.setdefault("ls_server", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(ls_server)


@dataclass(frozen=True)
class LabelStudio:
    url: str
    token: str
    document_root: Path  # LOCAL_FILES_DOCUMENT_ROOT: put batches under it
    started_in: float  # seconds, for the report of a slow run


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory) -> LabelStudio:
    venv = Path(os.environ.get("KPDELIVER_LS_VENV", ls_server.DEFAULT_VENV))
    template = Path(os.environ.get("KPDELIVER_LS_TEMPLATE", ls_server.DEFAULT_TEMPLATE))
    base = tmp_path_factory.mktemp("label-studio")
    root = base / "batches"
    root.mkdir()
    t0 = time.monotonic()
    # The server gets no AWS_* variables of ours (an S3 storage must carry what push sends), and its
    # SSRF guard lets an S3 endpoint on loopback (moto) be connected; a production server keeps
    # the guard and is given S3_ENDPOINT instead (docs/label-studio.md).
    env = {"SSRF_PROTECTION_ENABLED": "false", **{k: None for k in os.environ if k.startswith("AWS_")}}
    server = ls_server.start_from_template(
        base / "data", document_root=root, template=template, venv=venv, env=env
    )
    try:
        yield LabelStudio(server.url, server.token, root, time.monotonic() - t0)
    finally:
        server.stop()
