"""Image references of Label Studio server exports and storage URLs, mapped back to batch images."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from kpdeliver.codecs import label_studio
from kpdeliver.codecs.label_studio.paths import image_path
from kpdeliver.collect.exports import collect_exports
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.model import Dataset, Instances
from kpdeliver.storage import LocalStore
from kpdeliver.synth import synthetic_dataset
from tests.collect.test_collect import _png

PRESIGN = "/tasks/7/presign/?fileuri=" + base64.urlsafe_b64encode(
    b"s3://bkt/acme/images/d.jpg"
).decode().rstrip("=")


@pytest.mark.parametrize(
    "ref, path",
    [
        ("/data/local-files/?d=acme%2Fbatch7%2Fimages%2Fcam1%2Fa%20b.jpg", "acme/batch7/images/cam1/a b.jpg"),
        ("http://ls.example:8080/data/local-files/?d=cam1/a.jpg", "cam1/a.jpg"),
        ("/data/upload/12/0f3a9c1e-frame%2001.png", "frame 01.png"),
        ("/data/upload/img12600.png", "img12600.png"),  # older servers: no project, no hex prefix
        ("s3://bkt/acme/images/cam2/a.jpg", "acme/images/cam2/a.jpg"),
        ("gs://bkt/a.jpg", "a.jpg"),
        (
            "https://bkt.s3.eu-west-1.amazonaws.com/acme/a%2Bb.jpg?X-Amz-Signature=ab&X-Amz-Expires=3600",
            "acme/a+b.jpg",
        ),
        (PRESIGN, "acme/images/d.jpg"),
        ("/data/local-files/?d=..%2F..%2Fetc%2Fpasswd", "../../etc/passwd"),  # decoded; the caller refuses it
        ("images/cam1/a.jpg", "images/cam1/a.jpg"),
        ("C:\\data\\a.jpg", "C:\\data\\a.jpg"),
    ],
)
def test_reference_forms_give_the_path_they_denote(ref, path):
    assert image_path(ref) == path


BATCH = ["cam1/a.jpg", "cam2/a.jpg", "b.png", "c.jpg", "d.jpg"]  # two a.jpg: only the folder tells them apart
REFS = [
    "/data/local-files/?d=acme%2Fbatch7%2Fimages%2Fcam1%2Fa.jpg",
    "s3://bkt/acme/batch7/images/cam2/a.jpg",
    "/data/upload/3/9d2c41aa-b.png",
    "https://bkt.s3.amazonaws.com/acme/batch7/images/c.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=f00",
    PRESIGN,
]


@pytest.fixture()
def batch(tmp_path):
    truth = synthetic_dataset(len(BATCH), 10, seed=2, first_image_id=100)
    store = LocalStore(tmp_path)
    for i, (name, w, h) in enumerate(zip(BATCH, truth.images.width, truth.images.height)):
        store.put(f"images/{name}", _png(int(w), int(h), i))
    return store, truth


def _collect(store, truth, refs):
    export = truth.replace(images=truth.images.take(np.arange(len(truth.images))))
    export.images.file_name[:] = refs
    store.put("annotations/ann_a/export.json", label_studio.encode(export, as_predictions=False))
    ing = ingest_images(store)
    return ing, collect_exports(store, Dataset(truth.schema, ing.images, Instances.empty(17)), ["ann_a"])


def test_server_and_storage_references_land_on_the_batch_images(batch):
    store, truth = batch
    ing, res = _collect(store, truth, REFS)
    assert "ingest.unsafe_key" not in res.findings["check"].to_pylist()
    got = res.dataset.instances
    assert len(got) == len(truth.instances) and (got.image_id > 0).all()
    batch_name = dict(zip(ing.images.id.tolist(), ing.images.file_name.tolist()))
    truth_name = dict(zip(truth.images.id.tolist(), BATCH))
    assert [batch_name[i] for i in got.image_id.tolist()] == [
        truth_name[i] for i in truth.instances.image_id.tolist()
    ]


def test_a_reference_that_climbs_out_after_decoding_is_refused(batch):
    store, truth = batch
    refs = ["/data/local-files/?d=..%2F..%2Fcam1%2Fa.jpg", "s3://bkt/x/../../cam2/a.jpg", *REFS[2:]]
    _, res = _collect(store, truth, refs)
    unsafe = [r for r in res.findings.to_pylist() if r["check"] == "ingest.unsafe_key"]
    assert [r["file_name"] for r in unsafe] == refs[:2]
    assert "'../../cam1/a.jpg'" in unsafe[0]["message"]
    on_first_two = np.isin(truth.instances.image_id, truth.images.id[:2])
    assert (res.dataset.instances.image_id[on_first_two] == -1).all()
    assert (res.dataset.instances.image_id[~on_first_two] > 0).all()


def test_convert_with_images_finds_sizes_for_server_references(tmp_path):
    from kpdeliver.collect.files import read_annotations

    truth = synthetic_dataset(2, 5, seed=3, first_image_id=1)
    for name, w, h in zip(("a.png", "b.png"), truth.images.width, truth.images.height):
        (tmp_path / "photos").mkdir(exist_ok=True)
        (tmp_path / "photos" / name).write_bytes(_png(int(w), int(h), 0))
    export = truth.replace(images=truth.images.take(np.arange(2)))
    export.images.file_name[:] = ["/data/upload/4/1a2b3c4d-a.png", "/data/local-files/?d=shoot%2Fb.png"]
    doc = label_studio.encode(export, as_predictions=False)
    for key in (
        b'"original_width"',
        b'"original_height"',
    ):  # an export without sizes: they must come from the images
        doc = doc.replace(key, b'"dropped_' + key[1:])
    (tmp_path / "tasks.json").write_bytes(doc)
    got = read_annotations(tmp_path / "tasks.json", images_dir=tmp_path / "photos").dataset
    assert got.images.width.tolist() == truth.images.width.tolist()
    assert len(got.instances) == len(truth.instances)
