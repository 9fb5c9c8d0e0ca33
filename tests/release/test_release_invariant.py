"""The delivery invariant on a real package of the demo batch plus `images/train/scene_004.jpg` (whose
YOLO name used to be `scene_004`'s): every image delivered once with its own label file, no image with a
held-back person delivered, and `verify` naming the file when a YOLO label or image file is removed,
duplicated or swapped with another image's, even when the manifest is rewritten to match (unsigned)."""

from __future__ import annotations

import hashlib
import io
import shutil

import orjson
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from kpdeliver.config import load_config
from kpdeliver.release.package import HELD_WITH_LABEL
from kpdeliver.release.publish import clean_staging, publish, staging_prefix
from kpdeliver.release.stage import stage_plan
from kpdeliver.release.verify import check_release
from kpdeliver.storage import LocalStore
from kpdeliver.synth import make_demo_batch
from tests.release_helpers import package_demo

pytestmark = pytest.mark.slow
PREFIX = "demo/people-demo/v0001"


def _add_train_copy(batch) -> str:
    """`images/train/<name>`, another picture the size of one of ann_a's labelled images `<name>`, labelled
    by ann_a like it: under the old naming both were `<name>` in the YOLO tree. Returns `<name>`."""
    path = batch / "annotations" / "ann_a" / "person_keypoints.json"
    doc = orjson.loads(path.read_bytes())
    old = next(i for i in doc["images"] if any(a["image_id"] == i["id"] for a in doc["annotations"]))
    buf = io.BytesIO()
    Image.new("RGB", (old["width"], old["height"]), (90, 120, 30)).save(buf, "JPEG")
    (batch / "images" / "train").mkdir()
    (batch / "images" / "train" / old["file_name"]).write_bytes(buf.getvalue())
    with open(batch / "checksums.sha256", "a") as fh:
        fh.write(f"{hashlib.sha256(buf.getvalue()).hexdigest()}  images/train/{old['file_name']}\n")
    new_id, next_ann = max(i["id"] for i in doc["images"]) + 1, max(a["id"] for a in doc["annotations"]) + 1
    doc["images"].append({**old, "id": new_id, "file_name": f"train/{old['file_name']}"})
    doc["annotations"] += [
        {**a, "id": next_ann + j, "image_id": new_id}
        for j, a in enumerate(a for a in doc["annotations"] if a["image_id"] == old["id"])
    ]
    path.write_bytes(orjson.dumps(doc))
    return old["file_name"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_batch(root, seed=3)
    name = _add_train_copy(root / "batch")
    config = load_config(root / "client.yaml")
    plan, _ = package_demo(config)
    store, source = LocalStore(config.releases), LocalStore(config.source)
    staged = staging_prefix("demo", "people-demo", "ab" * 32)
    stage_plan(plan, release=store, source=source, prefix=staged)
    publish(
        store=store,
        client="demo",
        dataset="people-demo",
        fingerprint="ab" * 32,
        staged_prefix=staged,
        manifest_fields={},
    )
    clean_staging(store, "demo", "people-demo", "ab" * 32)
    return root / "releases", plan, name


@pytest.fixture
def copy(release, tmp_path):
    shutil.copytree(release[0], tmp_path / "releases")
    return LocalStore(tmp_path / "releases")


def _manifest(store) -> dict:
    return orjson.loads(store.get(f"{PREFIX}/manifest.json"))


def _rewrite(store, manifest: dict, *paths: str) -> None:
    """The manifest rewritten to match the files now there (what an attacker, or a careless tool, does)."""
    for path in paths:
        key = f"{PREFIX}/{path}"
        if store.exists(key):
            data = store.get(key)
            manifest["files"][path] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        else:
            manifest["files"].pop(path, None)
    store.put(f"{PREFIX}/manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))


def _invariant(store) -> list:
    return [p for p in check_release(store, PREFIX).problems if p.kind == "invariant"]


def _labelled(manifest: dict, n_lines: int) -> list[str]:
    return sorted(
        p
        for p in manifest["files"]
        if p.startswith("yolo/labels/")
        and manifest["files"][p]["size"]
        and manifest["files"][p]["size"] % n_lines == 0
    )


def test_every_delivered_image_has_its_own_yolo_files_and_verify_passes(release):
    root, plan, name = release
    store = LocalStore(root)
    manifest = _manifest(store)
    labels = [p for p in manifest["files"] if p.startswith("yolo/labels/")]
    images = [p for p in manifest["files"] if p.startswith("yolo/images/")]
    assert len(labels) == len(images) == plan.counts.images_delivered  # before: fewer label files than images
    stem = name.removesuffix(".jpg")
    assert {p.rsplit("/", 1)[-1] for p in labels} >= {f"{stem}.txt", f"train%2F{stem}.txt"}
    assert check_release(store, PREFIX).problems == []


def test_no_image_with_a_held_back_person_is_delivered(release):
    root, plan, _ = release
    store = LocalStore(root)
    images = pq.read_table(io.BytesIO(store.get(f"{PREFIX}/index/images.parquet")))
    held = pq.read_table(io.BytesIO(store.get(f"{PREFIX}/qa/quarantine.parquet")))
    on_images = set(held.filter(pc.is_valid(held["file_name"]))["file_name"].to_pylist())
    assert on_images  # the demo holds people back, at decode and for their findings
    status = dict(zip(images["file_name"].to_pylist(), images["status"].to_pylist()))
    assert {status[n] for n in on_images} == {HELD_WITH_LABEL}
    assert plan.counts.images_quarantined == len(on_images)  # the report's "images held back whole"


def test_a_removed_label_or_image_file_is_named_even_with_the_manifest_rewritten(copy):
    manifest = _manifest(copy)
    label = _labelled(manifest, 1)[0]
    image = next(p for p in manifest["files"] if p.startswith("yolo/images/"))
    for path in (label, image):
        copy.delete(f"{PREFIX}/{path}")
        _rewrite(copy, manifest, path)
        assert any(p.path == path and "missing" in p.detail for p in _invariant(copy)), path


def test_a_duplicated_label_or_image_file_is_named(copy):
    manifest = _manifest(copy)
    label = _labelled(manifest, 1)[0]
    image = next(p for p in manifest["files"] if p.startswith("yolo/images/"))
    dup_label, dup_image = label.replace(".txt", " (copy).txt"), image.replace(".", " (copy).", 1)
    copy.put(f"{PREFIX}/{dup_label}", copy.get(f"{PREFIX}/{label}"))
    copy.put(f"{PREFIX}/{dup_image}", copy.get(f"{PREFIX}/{image}"))
    _rewrite(copy, manifest, dup_label, dup_image)
    named = {p.path for p in _invariant(copy)}
    assert {dup_label, dup_image} <= named


def test_label_files_swapped_between_two_images_are_named(copy):
    manifest = _manifest(copy)
    a, b = _labelled(manifest, 1)[:2]  # same size: the line counts agree, only the keypoints tell
    sizes = {p: manifest["files"][p]["size"] for p in (a, b)}
    if sizes[a] != sizes[b]:
        b = next(p for p in _labelled(manifest, 1) if p != a and manifest["files"][p]["size"] == sizes[a])
    data_a, data_b = copy.get(f"{PREFIX}/{a}"), copy.get(f"{PREFIX}/{b}")
    copy.put(f"{PREFIX}/{a}", data_b)
    copy.put(f"{PREFIX}/{b}", data_a)
    _rewrite(copy, manifest, a, b)
    problems = _invariant(copy)
    assert {a, b} <= {p.path for p in problems}, problems
    assert all("not the keypoints of image" in p.detail for p in problems if p.path in (a, b))


def test_image_files_swapped_between_two_images_are_named(copy):
    manifest = _manifest(copy)
    a, b = [p for p in manifest["files"] if p.startswith("yolo/images/train/")][:2]
    data_a, data_b = copy.get(f"{PREFIX}/{a}"), copy.get(f"{PREFIX}/{b}")
    copy.put(f"{PREFIX}/{a}", data_b)
    copy.put(f"{PREFIX}/{b}", data_a)
    _rewrite(copy, manifest, a, b)
    problems = _invariant(copy)
    assert {a, b} <= {p.path for p in problems} and all("another image" in p.detail for p in problems), (
        problems
    )


def test_verify_exits_1_naming_the_file(copy):
    from typer.testing import CliRunner

    from kpdeliver.cli import app

    manifest = _manifest(copy)
    label = _labelled(manifest, 1)[0]
    copy.put(f"{PREFIX}/{label}", b"")
    _rewrite(copy, manifest, label)
    res = CliRunner().invoke(app, ["verify", copy.location(PREFIX)])
    assert res.exit_code == 1 and f"invariant: {label}" in res.output, res.output
