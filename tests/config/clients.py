"""A client folder for the config tests (a config, a batch with one image and one export per
annotator), and the CLI run the way an operator runs it: a fresh process, exit code and stderr."""

from __future__ import annotations

import ctypes
import io
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
client: acme
dataset: pose-2026
schema: coco17
source: ./batch
releases: ./releases
annotators: [ann_a, ann_b]
"""


def make_clients(folder: Path, config: str = GOOD) -> Path:
    batch = folder / "batch"
    (batch / "images").mkdir(parents=True)
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 30)).save(buf, "JPEG")
    (batch / "images" / "img_0001.jpg").write_bytes(buf.getvalue())
    for who in ("ann_a", "ann_b"):
        (batch / "annotations" / who).mkdir(parents=True)
        (batch / "annotations" / who / "export.json").write_bytes(b'{"images": [], "annotations": []}')
    (folder / "acme.yaml").write_text(config)
    return folder


def _without_dac_override() -> None:
    """In the child: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so a root
    process meets permission bits the way any other user does (PR_CAPBSET_DROP, Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        libc.prctl(24, cap, 0, 0, 0)


def kpdeliver(
    *args: str, cwd: Path, env: dict | None = None, permission_bits: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess:
    """`kpdeliver ARGS` in a fresh process; `permission_bits`: as root without the capabilities
    that let root ignore them (tests run as root)."""
    base = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-c", "from kpdeliver.cli import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
        preexec_fn=_without_dac_override if permission_bits and os.geteuid() == 0 else None,
    )


def assert_refused(out: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2 with one error, one sentence on one line naming every fragment, and no traceback
    (warnings about other files may come before it)."""
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr, out.stderr
    [error] = [line for line in out.stderr.splitlines() if not line.startswith("warning: ")]
    assert error.startswith("error: "), out.stderr
    for fragment in fragments:
        assert fragment in error, (fragment, out.stderr)


def assert_usable(out: subprocess.CompletedProcess) -> None:
    assert out.returncode == 0 and "usable" in out.stdout, (out.returncode, out.stdout, out.stderr)
