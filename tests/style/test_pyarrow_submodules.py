"""pyarrow's submodules (compute, parquet, csv, …) exist as attributes of `pyarrow` only once some
other code imported them, so `pa.compute.f(...)` works in one process and fails with an
AttributeError in another (a fresh `verify` run). Every module imports the submodule it uses."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ATTRIBUTE_USE = re.compile(r"\bpa\.(compute|parquet|csv|dataset|json|ipc|fs|feather|orc)\.")


def test_no_module_reaches_a_pyarrow_submodule_through_the_package_attribute():
    hits = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for package in ("kpdeliver", "flows", "tasks", "expectations")
        for p in sorted((ROOT / package).rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if ATTRIBUTE_USE.search(line)
    ]
    assert not hits, "import the submodule (import pyarrow.compute as pc):\n" + "\n".join(hits)
