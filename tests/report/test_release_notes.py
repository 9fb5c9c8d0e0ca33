"""Release notes on a second version: the report compares with the published v0001 and
`qa/changes.parquet` lists what changed."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kpdeliver.config import load_config
from kpdeliver.release.publish import ReleaseKey, input_fingerprint
from kpdeliver.release.stage import stage_plan
from kpdeliver.report.changes import change_counts
from kpdeliver.storage import LocalStore
from kpdeliver.synth import make_demo_batch

from .conftest import package_demo

pytestmark = pytest.mark.slow


def _publish(config, plan) -> None:
    from tasks import store

    source, releases = LocalStore(config.source), LocalStore(config.releases)
    key = ReleaseKey(config.client, config.dataset, input_fingerprint(config, ["first"], {}))
    stage_plan(plan, release=releases, source=source, prefix=key.staging)
    store.publish_release.fn(releases, key, {})


def test_the_second_version_lists_what_changed_since_the_first(tmp_path):
    root = tmp_path / "demo"
    config = load_config(make_demo_batch(root, seed=4, n_images=10))
    first_plan, _ = package_demo(config)
    _publish(config, first_plan)
    images = sorted((root / "batch" / "images").iterdir())
    gone = images[-1]
    gone.unlink()  # the client withdrew an image; its labels now name no image of the batch
    checksums = root / "batch" / "checksums.sha256"
    checksums.write_text(
        "".join(line for line in checksums.read_text().splitlines(True) if gone.name not in line)
    )
    plan, _ = package_demo(config)
    html = plan.files["qa/report.html"].decode()
    changes = pq.read_table(pa.BufferReader(plan.files["qa/changes.parquet"]))
    counts = change_counts(changes)
    assert counts["image"] == {"added": 0, "removed": 1, "changed": 0}
    removed = changes.filter(pa.compute.equal(changes["item"], "image"))["file_name"].to_pylist()
    assert removed == [gone.name]
    first = pq.read_table(pa.BufferReader(first_plan.files["index/annotations.parquet"]))
    second = pq.read_table(pa.BufferReader(plan.files["index/annotations.parquet"]))
    assert counts["instance"]["removed"] == first.num_rows - second.num_rows > 0
    assert "Compared with v0001 of this dataset" in html
    assert '<tr data-changes="image"><td>images</td><td class="n">0</td><td class="n">1</td>' in html
