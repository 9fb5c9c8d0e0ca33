"""The free sample a prospect receives (`kpdeliver sample` on the demo batch): a release
`<dataset>-sample` of at most n images chosen to cover the batch's pose clusters, occluded and
out-of-frame points (for the vendor), and the prospect's package: a page of its own that says what
the sample is and how it was chosen, shows every image, the schema and the flags, and never an
annotator, a verdict or an internal path; COCO JSON and a YOLO tree. Items refused at decode on the
sample's images stay in the sample and are counted. The page renders in chromium, offline."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.cli.sample import write_sample_batch
from kpdeliver.collect.exports import collect_exports
from kpdeliver.config import ClientConfig, load_config
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.model import Dataset, Instances
from kpdeliver.schema import COCO17
from kpdeliver.storage import LocalStore
from kpdeliver.synth import make_demo_batch

from .test_report_browser import render


@dataclass
class Sample:
    root: Path
    config: ClientConfig
    output: str
    out: Path
    html: str
    text: str  # the page without its style sheet


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Sample:
    root = tmp_path_factory.mktemp("sample")
    config_path = make_demo_batch(root / "demo", seed=2, n_images=30)
    out = root / "package"
    res = CliRunner().invoke(
        app,
        [
            "sample",
            "--config",
            str(config_path),
            "--n",
            "12",
            "--work",
            str(root / "work"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    html = (out / "index.html").read_text()
    return Sample(
        root,
        load_config(config_path),
        res.output,
        out,
        html,
        re.sub(r"<style>.*?</style>", "", html, flags=re.S),
    )


@pytest.mark.slow
def test_sample_publishes_a_sample_release_covering_the_batch(sample):
    config, output = sample.config, sample.output
    releases = LocalStore(config.releases)
    manifest = orjson.loads(releases.get(f"{config.client}/{config.dataset}-sample/v0001/manifest.json"))
    assert manifest["dataset"] == "people-demo-sample" and manifest["counts"]["images_listed"] == 12
    assert "qa/report.html" in manifest["files"] and "qa/signoff.json" in manifest["files"]
    for tag in ("occluded", "out_of_frame", "pose cluster 1"):
        assert tag in output
    # the table's plain columns (piped): what, images in the sample, images in the batch
    rows = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S.*?) {2,}(\d+) +\d+$", output, re.M)}
    clusters = {tag: n for tag, n in rows.items() if tag.startswith("pose cluster")}
    assert clusters and all(n > 0 for n in clusters.values())  # every pose cluster
    assert not list(releases.list(f"{config.client}/{config.dataset}/"))  # the client's own dataset untouched


@pytest.mark.slow
def test_the_page_says_what_the_sample_is_and_shows_every_image(sample):
    text = sample.text
    assert "12 images from your batch of 30" in text and "pose clusters" in text
    assert text.count('<div class="pic" data-status=') == 12
    assert "<svg class=chart" in text and '<svg class="skeleton"' in text  # the coverage chart, the skeleton
    for name in COCO17.keypoints:
        assert f'data-keypoint="{name}"' in text
    coco = orjson.loads((sample.out / "coco" / "sample.json").read_bytes())
    v = np.asarray([a["keypoints"][2::3] for a in coco["annotations"]])
    for flag in (2, 1, 0):
        shown = re.search(rf'data-flag="{flag}"><b>([\d,]+)</b>', text).group(1)
        assert int(shown.replace(",", "")) == int((v == flag).sum())
    releases = LocalStore(sample.config.releases)
    held = pq.read_table(
        io.BytesIO(
            releases.get(f"{sample.config.client}/{sample.config.dataset}-sample/v0001/qa/quarantine.parquet")
        )
    )
    assert f'data-held-labels="{held.num_rows}"' in text


@pytest.mark.slow
def test_the_page_names_no_annotator_no_verdict_and_no_internal_path(sample):
    text = sample.text
    for name in sample.config.annotators:
        assert name not in text
    for internal in (
        str(sample.root),
        "/tmp",
        "annotations/",
        ".parquet",
        "quarantine",
        "signoff",
        "report.html",
    ):
        assert internal not in text, internal
    assert not re.search(r"\b(PASS|FAIL|CONDITIONAL|conditional|verdict|sign-off)\b", text)
    assert "annotator" not in (sample.out / "coco" / "sample.json").read_text()


@pytest.mark.slow
def test_the_package_holds_coco_and_a_yolo_tree(sample):
    coco = orjson.loads((sample.out / "coco" / "sample.json").read_bytes())
    data = yaml.safe_load((sample.out / "yolo" / "data.yaml").read_text())
    assert data["kpt_shape"] == [17, 3] and data["flip_idx"] == [int(i) for i in COCO17.flip_idx]
    labels = sorted((sample.out / "yolo" / "labels").rglob("*.txt"))
    assert len(labels) == len(coco["images"]) == len(list((sample.out / "yolo" / "images").rglob("*.jpg")))
    assert sum(len(p.read_text().splitlines()) for p in labels) == len(coco["annotations"]) > 0


@pytest.mark.slow
def test_chromium_renders_the_page_and_enlarges_a_picture_without_script(chromium, sample, tmp_path):
    assert "<script" not in sample.html.lower() and "<link" not in sample.html.lower()
    shot = tmp_path / "sample.png"
    run = render(
        chromium, tmp_path, sample.out / "index.html", f"--screenshot={shot}", "--window-size=1300,2400"
    )
    assert shot.is_file(), run.stderr.decode(errors="replace")[-2000:]
    assert np.asarray(Image.open(shot).convert("L"), dtype=float).std() > 20  # not a blank page
    zoomed = tmp_path / "zoomed.html"  # the first picture clicked: its checkbox checked
    zoomed.write_text(sample.html.replace('<input type="checkbox">', '<input type="checkbox" checked>', 1))
    shot = tmp_path / "zoomed.png"
    render(chromium, tmp_path, zoomed, f"--screenshot={shot}", "--window-size=1300,900")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels[:30, :30].mean() < 80 and pixels[-30:, :30].mean() < 80  # the page darkened behind it
    middle = pixels[300:600, 450:850]
    assert middle.std() > 10 and middle.mean() > 60  # the picture, large, in the middle


def test_items_refused_at_decode_on_the_sample_s_images_stay_in_the_sample(tmp_path):
    config = load_config(make_demo_batch(tmp_path / "demo", seed=0))
    store = LocalStore(config.source)
    images = ingest_images(store).images
    collected = collect_exports(store, Dataset(COCO17, images, Instances.empty(17)), config.annotators)
    refused = collected.rejected.filter(pa.compute.is_valid(collected.rejected["image_id"]))
    assert refused.num_rows > 0  # the demo refuses a label with 16 keypoints
    on = set(refused["image_id"].to_pylist())
    names = [n for i, n in zip(images.id.tolist(), images.file_name.tolist(), strict=True) if i in on][:1]
    names += [n for n in images.file_name.tolist() if n not in names][:3]
    folder = tmp_path / "batch"
    write_sample_batch(store, collected, names, folder)
    sample = LocalStore(str(folder))
    again = collect_exports(
        sample, Dataset(COCO17, ingest_images(sample).images, Instances.empty(17)), config.annotators
    )
    expected = refused.filter(
        pa.compute.is_in(refused["image_id"], pa.array(images.id[np.isin(images.file_name, names)]))
    )
    assert sorted(
        zip(again.rejected["annotator"].to_pylist(), again.rejected["check"].to_pylist(), strict=True)
    ) == sorted(zip(expected["annotator"].to_pylist(), expected["check"].to_pylist(), strict=True))
