"""`kpdeliver sample` on the demo batch: a release `<dataset>-sample` of at most n images, chosen to
cover the batch's pose clusters, occluded and out-of-frame points; its report and sign-off."""
from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.config import load_config
from kpdeliver.storage import LocalStore
from kpdeliver.synth import make_demo_batch

pytestmark = pytest.mark.slow


def test_sample_publishes_a_sample_release_covering_the_batch(tmp_path):
    config_path = make_demo_batch(tmp_path / "demo", seed=2, n_images=30)
    config = load_config(config_path)
    res = CliRunner().invoke(app, ["sample", "--config", str(config_path), "--n", "12", "--work", str(tmp_path / "work")])
    assert res.exit_code == 0, res.output
    releases = LocalStore(config.releases)
    manifest = orjson.loads(releases.get(f"{config.client}/{config.dataset}-sample/v0001/manifest.json"))
    assert manifest["dataset"] == "people-demo-sample" and manifest["counts"]["images_listed"] == 12
    assert "qa/report.html" in manifest["files"] and "qa/signoff.json" in manifest["files"]
    for tag in ("occluded", "out_of_frame", "pose cluster 1"):
        assert tag in res.output
    lines = {line.split("│")[1].strip(): line for line in res.output.splitlines() if line.count("│") >= 4}
    clusters = {tag: row for tag, row in lines.items() if tag.startswith("pose cluster")}
    assert clusters and all(int(row.split("│")[2]) > 0 for row in clusters.values())  # every pose cluster
    assert not list(releases.list(f"{config.client}/{config.dataset}/"))  # the client's own dataset untouched
