"""How Great Expectations is imported: the parts our suites never use wait until touched, and the
`validate` worker leaves SQLAlchemy out; the rules give the same findings either way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from expectations import import_gx
v = import_gx(without_sql={without_sql})
from kpdeliver.config import ValidationSettings
from kpdeliver.synth.datasets import synthetic_dataset
ds = synthetic_dataset(30, 90, seed=3)
ds.instances.keypoints[0, 0] = (5.0, 5.0, 0)  # v=0 with coordinates: a finding
ds.instances.keypoints[1, 1] = (-40.0, 10.0, 2)  # visible outside the image: a finding
report = v.validate_dataset(ds, ValidationSettings())
print(json.dumps({{
    "sqlalchemy": sys.modules.get("sqlalchemy", "absent") is None,
    "deferred": {{m: type(sys.modules[m]).__name__ for m in ("scipy.stats", "altair") if m in sys.modules}},
    "findings": sorted(report.findings["check"].to_pylist()),
}}))
"""


def probe(without_sql: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(without_sql=without_sql)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_lean_worker_import_gives_the_same_findings():
    worker, flow = probe(True), probe(False)
    assert worker["sqlalchemy"] is True  # blocked in the worker
    assert flow["sqlalchemy"] is False
    for result in (worker, flow):
        assert result["deferred"] == {"scipy.stats": "_LazyModule", "altair": "_LazyModule"}
    assert worker["findings"] == flow["findings"]
    assert {"visibility.unlabeled_with_coords", "bounds.visible_outside_image"} <= set(worker["findings"])


@pytest.mark.parametrize("mostly", [1.0, 0.995])
def test_points_validated_in_pieces_give_the_whole_tables_results(monkeypatch, mostly):
    import orjson

    from expectations import import_gx
    from kpdeliver.config import ValidationSettings
    from kpdeliver.synth.datasets import synthetic_dataset

    v = import_gx()
    ds = synthetic_dataset(200, 600, seed=5)
    ins = ds.instances
    ins.keypoints[::97, 0] = (3.0, 4.0, 0)  # v=0 with coordinates
    ins.keypoints[::89, 5] = (-50.0, 10.0, 2)  # visible outside the image
    settings = ValidationSettings(mostly=mostly)
    whole = v.validate_dataset(ds, settings)
    from expectations import frames

    monkeypatch.setattr(frames, "_CHUNK", 331)
    monkeypatch.setattr(frames, "_PIECE", 997)  # a dozen uneven pieces per points table, filled in thirds
    parts = v.validate_dataset(ds, settings)
    assert parts.findings.equals(whole.findings)
    assert orjson.dumps(v.results_summary(parts.results)) == orjson.dumps(v.results_summary(whole.results))
    assert {"visibility.unlabeled_with_coords", "bounds.visible_outside_image"} <= set(
        whole.findings["check"].to_pylist()
    )
