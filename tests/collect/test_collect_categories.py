"""A COCO export's keypoint category is delivered under any id its file declares (0, 2, 3, 17),
from annotators and gold alike, and with `category:` from a file that holds several: the
delivered table declares every category an instance carries, which is what the row rule
`schema.unknown_category` checks."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.schema import COCO17
from kpdeliver.storage import LocalStore
from tests.collect.batch_helpers import REAL, checks, collect, put_images

COCO_REAL = REAL / "super-gradients" / "person_keypoints_val2017.json"  # a real COCO val2017 subset


def _with_category_id(doc: dict, cid: int) -> bytes:
    """The real file with its person category declared (and used) as `cid`."""
    doc = json.loads(json.dumps(doc))
    doc["categories"][0]["id"] = cid
    for a in doc["annotations"]:
        a["category_id"] = cid
    return orjson.dumps(doc)


def _declared(result) -> set[int]:
    return {c.id for c in result.dataset.categories}


@pytest.mark.parametrize("cid", [0, 2, 3, 17])
def test_a_declared_category_id_is_delivered_for_annotators_and_gold(tmp_path, cid):
    doc = json.loads(COCO_REAL.read_bytes())
    store = LocalStore(tmp_path)
    put_images(store, {im["file_name"]: (im["width"], im["height"]) for im in doc["images"]})
    store.put("annotations/ann_a/person_keypoints.json", _with_category_id(doc, cid))
    store.put("annotations/ann_b/person_keypoints.json", _with_category_id(doc, cid))
    store.put("gold/person_keypoints.json", _with_category_id(doc, cid))
    res = collect(store, COCO17, ["ann_a", "ann_b"])
    assert "error" not in res.findings["severity"].to_pylist()
    n = len(doc["annotations"])
    assert len(res.dataset.instances) == 2 * n and len(res.gold.instances) == n
    assert set(res.everything.instances.category_id.tolist()) == {cid}
    assert _declared(res) == {cid} and [c.name for c in res.gold.categories] == ["person"]
    # the row rule's condition: every instance's category is declared by the delivered table
    assert np.isin(res.everything.instances.category_id, list(_declared(res))).all()


def test_two_annotators_numbering_the_same_category_differently_deliver_one_category(tmp_path):
    doc = json.loads(COCO_REAL.read_bytes())
    store = LocalStore(tmp_path)
    put_images(store, {im["file_name"]: (im["width"], im["height"]) for im in doc["images"]})
    store.put("annotations/ann_a/a.json", _with_category_id(doc, 3))
    store.put("annotations/ann_b/b.json", _with_category_id(doc, 1))
    res = collect(store, COCO17, ["ann_a", "ann_b"])
    assert [(c.id, c.name) for c in res.dataset.categories] == [(3, "person")]
    assert set(res.dataset.instances.category_id.tolist()) == {3}


def test_the_configured_category_of_a_file_with_several_is_delivered(tmp_path):
    """sleap-io's mixed_animals: a mouse (id 1, 17 points) and a fly (id 2, 13 points)."""
    path = REAL / "sleap-io" / "coco" / "mixed_animals" / "annotations.json"
    doc = json.loads(path.read_bytes())
    fly = next(c for c in doc["categories"] if c["name"] == "fly")
    schema_file = tmp_path / "fly.yaml"
    schema_file.write_text(json.dumps({"name": "fly", "category": "fly", "keypoints": fly["keypoints"]}))
    store = LocalStore(tmp_path / "batch")
    put_images(store, {im["file_name"]: (im["width"], im["height"]) for im in doc["images"]})
    store.put("annotations/ann_a/annotations.json", path.read_bytes())
    store.put("gold/annotations.json", path.read_bytes())
    res = collect(store, resolve_schema(schema_file), ["ann_a"], category="fly")
    n_fly = sum(a["category_id"] == fly["id"] for a in doc["annotations"])
    assert len(res.dataset.instances) == n_fly and len(res.gold.instances) == n_fly
    assert set(res.everything.instances.category_id.tolist()) == {fly["id"]}
    assert _declared(res) == {fly["id"]}
    assert "collect.unreadable_file" not in checks(res)
