"""Collect reads each annotator's export in whatever format they delivered and lands every
instance on the batch's own image ids."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from kpdeliver.codecs import coco, cvat, label_studio
from kpdeliver.collect.exports import collect_exports
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.model import Dataset, Instances
from kpdeliver.storage import LocalStore
from kpdeliver.synth import synthetic_dataset


def _png(w: int, h: int, seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def batch(tmp_path):
    truth = synthetic_dataset(6, 12, seed=4, first_image_id=500)
    store = LocalStore(tmp_path)
    for i, (name, w, h) in enumerate(zip(truth.images.file_name, truth.images.width, truth.images.height)):
        store.put(f"images/{name}", _png(int(w), int(h), i))
    return store, truth


@pytest.mark.parametrize(
    "fmt, encode, ext",
    [
        ("coco", coco.encode, "json"),
        ("cvat", cvat.encode, "xml"),
        ("label-studio", lambda d: label_studio.encode(d, as_predictions=False), "json"),
    ],
)
def test_every_export_format_lands_on_the_batch_images(batch, fmt, encode, ext):
    store, truth = batch
    store.put(f"annotations/ann_a/export.{ext}", encode(truth))
    ing = ingest_images(store)
    empty = Dataset(truth.schema, ing.images, Instances.empty(17))
    res = collect_exports(store, empty, ["ann_a"])
    assert "error" not in res.findings["severity"].to_pylist()
    got = res.dataset.instances
    assert len(got) == len(truth.instances)
    # batch ids (1..n) replace the export's ids (500..); the export's ids are kept for audit
    names_truth = dict(zip(truth.images.id.tolist(), truth.images.file_name.tolist()))
    names_batch = dict(zip(ing.images.id.tolist(), ing.images.file_name.tolist()))
    assert [names_batch[i] for i in got.image_id.tolist()] == [
        names_truth[i] for i in truth.instances.image_id.tolist()
    ]
    assert (got.extra["source_image_id"] == truth.instances.image_id).all()
    labeled = truth.instances.v > 0
    assert np.allclose(got.keypoints[labeled][:, :2], truth.instances.keypoints[labeled][:, :2], atol=1e-3)
    assert np.array_equal(got.v, truth.instances.v)
    assert set(got.annotator) == {"ann_a"}


def test_an_export_for_an_unknown_annotator_is_reported_not_used(batch):
    store, truth = batch
    store.put("annotations/mallory/export.json", coco.encode(truth))
    ing = ingest_images(store)
    res = collect_exports(store, Dataset(truth.schema, ing.images, Instances.empty(17)), ["ann_a"])
    assert len(res.dataset.instances) == 0
    assert res.findings["check"].to_pylist() == ["collect.unreadable_file"]
    assert "mallory" in res.findings["message"][0].as_py()


def test_an_export_file_name_that_climbs_out_is_refused_not_matched(batch):
    store, truth = batch
    evil = truth.replace(images=truth.images.take(np.arange(len(truth.images))))
    evil.images.file_name[0] = "../../" + evil.images.file_name[0]
    store.put("annotations/ann_a/export.json", coco.encode(evil))
    ing = ingest_images(store)
    res = collect_exports(store, Dataset(truth.schema, ing.images, Instances.empty(17)), ["ann_a"])
    unsafe = [r for r in res.findings.to_pylist() if r["check"] == "ingest.unsafe_key"]
    assert [r["file_name"] for r in unsafe] == [evil.images.file_name[0]]
    on_first = truth.instances.image_id == truth.images.id[0]
    assert (res.dataset.instances.image_id[on_first] == -1).all()
    assert (res.dataset.instances.image_id[~on_first] > 0).all()
