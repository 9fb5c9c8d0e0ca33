"""Each `kpdeliver sample` publishes exactly its own images: a second, smaller sample after a first
one does not pick up the first one's images (before: 82 images published for `--n 20`, 28 of them
`unlabeled`, each with an empty YOLO label file)."""

from __future__ import annotations

import io

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.cli.sample import fresh_batch_folder
from kpdeliver.config import load_config
from kpdeliver.storage import LocalStore
from kpdeliver.synth import make_demo_batch

pytestmark = pytest.mark.slow


def test_a_second_sample_publishes_only_its_own_images(tmp_path):
    config_path = make_demo_batch(tmp_path / "demo", seed=2, n_images=30)
    config = load_config(config_path)
    releases = LocalStore(config.releases)
    for version, (n, seed) in enumerate([(12, 0), (5, 1)], start=1):
        res = CliRunner().invoke(
            app,
            [
                "sample",
                "--config",
                str(config_path),
                "--n",
                str(n),
                "--seed",
                str(seed),
                "--work",
                str(tmp_path / "work"),
            ],
        )
        assert res.exit_code == 0, res.output
        prefix = f"{config.client}/{config.dataset}-sample/v{version:04d}"
        manifest = orjson.loads(releases.get(f"{prefix}/manifest.json"))
        images = pq.read_table(io.BytesIO(releases.get(f"{prefix}/index/images.parquet")))
        assert manifest["counts"]["images_listed"] == images.num_rows == n
        assert "unlabeled" not in images["status"].to_pylist()
    assert (
        len(list((tmp_path / "work" / "sample" / config.client / f"{config.dataset}-sample").glob("batch*")))
        == 1
    )


def test_the_batch_folder_of_a_sample_starts_empty(tmp_path):
    parent = tmp_path / "sample"
    first = fresh_batch_folder(parent, "aaa")
    (first / "images").mkdir()
    (first / "images" / "left.jpg").write_bytes(b"x")
    again = fresh_batch_folder(parent, "aaa")
    other = fresh_batch_folder(parent, "bbb")
    assert again == first and not again.exists() and list(other.iterdir()) == []
    assert [p.name for p in parent.iterdir()] == ["batch-bbb"]
