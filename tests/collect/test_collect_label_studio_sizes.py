"""A Label Studio export whose results carry no original_width/original_height is sized from the
batch's own images (ingest measured them), not held back as "image size unknown"."""

from __future__ import annotations

import json

import numpy as np
import orjson

from kpdeliver.codecs.registry import decode_bytes
from kpdeliver.storage import LocalStore
from tests.collect.batch_helpers import REAL, collect, put_images

LS_REAL = (
    REAL / "sleap-io" / "labelstudio" / "multi_animal_from_dlc.json"
)  # a real export: 2 tasks, 2 image sizes


def _size(task: dict) -> tuple[int, int]:
    r = task["annotations"][0]["result"][0]
    return r["original_width"], r["original_height"]


def _without_sizes(tasks: list[dict]) -> bytes:
    tasks = json.loads(json.dumps(tasks))
    for task in tasks:
        for work in task.get("annotations", []) + task.get("predictions", []):
            for r in work.get("result", []):
                r.pop("original_width", None)
                r.pop("original_height", None)
    return orjson.dumps(tasks)


def test_a_label_studio_export_without_sizes_is_sized_from_the_batch(tmp_path):
    data = LS_REAL.read_bytes()
    tasks = json.loads(data)
    # the file as written, sizes included
    truth = decode_bytes("export.json", data, source="annotations/ann_a/export.json")
    assert len(truth.dataset.instances)
    store = LocalStore(tmp_path)
    put_images(store, {t["data"]["image"].rsplit("/", 1)[-1]: _size(t) for t in tasks})
    store.put("annotations/ann_a/export.json", _without_sizes(tasks))
    res = collect(store, truth.dataset.schema, ["ann_a"])
    # only what the file itself holds back (points of another control), never "image size unknown"
    assert res.rejected["reason"].to_pylist() == truth.rejected["reason"].to_pylist()
    got = res.dataset.instances
    assert len(got) == len(truth.dataset.instances)
    assert np.allclose(got.keypoints, truth.dataset.instances.keypoints, atol=1e-6)


def test_the_labeling_config_saved_beside_an_export_is_used_not_reported_unreadable(tmp_path):
    """`convert --to label-studio` (like a project backup) writes tasks.json and label_config.xml."""
    from kpdeliver.codecs.registry import encode_files
    from kpdeliver.schema import COCO17

    real = REAL / "super-gradients" / "person_keypoints_val2017.json"
    doc = json.loads(real.read_bytes())
    truth = decode_bytes("coco.json", real.read_bytes(), schema=COCO17).dataset
    files = encode_files(truth, "label-studio")
    assert any(name.endswith(".xml") for name in files)
    store = LocalStore(tmp_path)
    put_images(store, {im["file_name"]: (im["width"], im["height"]) for im in doc["images"]})
    for name, data in files.items():
        store.put(f"annotations/ann_a/{name}", data)
    res = collect(store, COCO17, ["ann_a"])
    assert "collect.unreadable_file" not in res.findings["check"].to_pylist(), res.findings[
        "message"
    ].to_pylist()
    assert len(res.dataset.instances) == len(truth.instances)
    assert set(res.files) == {f"annotations/ann_a/{name}" for name in files}
