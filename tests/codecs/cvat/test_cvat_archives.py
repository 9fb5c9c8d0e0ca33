"""The zip CVAT returns from "Export task dataset" is an annotator export as it stands.

The archives are built here from real files, in the layouts CVAT's format documentation gives
(docs.cvat.ai, formats "CVAT for images", "CVAT for video", "COCO Keypoints"):
  CVAT for images 1.1   annotations.xml + images/<name>
  CVAT for video 1.1    annotations.xml + images/frame_NNNNNN.png
  COCO Keypoints 1.0    annotations/person_keypoints_default.json + images/default/<name>
from the two examples of CVAT's XML format page (tests/fixtures/real/cvat) and a slice of COCO
val2017 person keypoints (tests/fixtures/real/super-gradients). A task backup (task.json,
annotations.json, data/ with manifest.jsonl) is no annotation export and is refused by name.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import orjson
import pytest
from PIL import Image

from kpdeliver.codecs import CodecError
from kpdeliver.codecs.registry import decode_bytes, schema_from_metadata
from kpdeliver.collect.exports import collect_exports
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.model import Dataset, Instances
from kpdeliver.schema import COCO17
from kpdeliver.storage import LocalStore

ROOT = Path(__file__).resolve().parents[3]
REAL = ROOT / "tests" / "fixtures" / "real"
CVAT_IMAGES = REAL / "cvat" / "xml_format.example-images.xml"
CVAT_VIDEO = REAL / "cvat" / "xml_format.example-video.xml"
COCO_VAL = REAL / "super-gradients" / "person_keypoints_val2017.json"
KPDELIVER = Path(sys.executable).with_name("kpdeliver")


def _image(name: str, w: int, h: int) -> bytes:
    """A plain image, different for each name (the batch drops byte-identical images)."""
    buf = io.BytesIO()
    shade = zlib.crc32(name.encode())
    Image.new("RGB", (w, h), (shade & 255, shade >> 8 & 255, shade >> 16 & 255)).save(
        buf, "PNG" if name.endswith(".png") else "JPEG"
    )
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _cvat_images():
    xml = CVAT_IMAGES.read_bytes()
    images = {"filename000.jpg": _image("filename000.jpg", 1600, 1200)}
    return "xml", xml, images, _zip({"annotations.xml": xml, **{f"images/{n}": b for n, b in images.items()}})


def _cvat_video():
    xml = CVAT_VIDEO.read_bytes()
    images = {f"frame_{f:06d}.png": _image(f"frame_{f:06d}.png", 640, 480) for f in range(15)}
    return "xml", xml, images, _zip({"annotations.xml": xml, **{f"images/{n}": b for n, b in images.items()}})


def _coco_keypoints():
    doc = orjson.loads(COCO_VAL.read_bytes())
    images = {i["file_name"]: _image(i["file_name"], i["width"], i["height"]) for i in doc["images"]}
    data = COCO_VAL.read_bytes()
    return (
        "json",
        data,
        images,
        _zip(
            {
                "annotations/person_keypoints_default.json": data,
                **{f"images/default/{n}": b for n, b in images.items()},
            }
        ),
    )


LAYOUTS = {"cvat-images": _cvat_images, "cvat-video": _cvat_video, "coco-keypoints": _coco_keypoints}


def _schema(ext: str, bare: bytes):
    return schema_from_metadata("annotations.xml", bare) if ext == "xml" else COCO17


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_cvat_export_zip_is_collected_like_its_bare_file(tmp_path, layout):
    ext, bare, images, archive = LAYOUTS[layout]()
    store = LocalStore(tmp_path)
    for name, data in images.items():
        store.put(f"images/{name}", data)
    store.put(f"annotations/ann_a/annotations.{ext}", bare)
    store.put("annotations/ann_b/task_7_export.zip", archive)
    schema = _schema(ext, bare)
    batch = Dataset(schema, ingest_images(store).images, Instances.empty(schema.num_keypoints))
    res = collect_exports(store, batch, ["ann_a", "ann_b"])
    assert "collect.unreadable_file" not in res.findings["check"].to_pylist(), res.findings.to_pylist()
    ins = res.dataset.instances
    a, b = (np.flatnonzero(ins.annotator == who) for who in ("ann_a", "ann_b"))
    assert len(a) == len(b) > 0
    assert (ins.image_id[a] >= 0).all(), "every instance lands on a batch image"
    np.testing.assert_array_equal(ins.image_id[a], ins.image_id[b])
    np.testing.assert_array_equal(ins.keypoints[a], ins.keypoints[b])
    assert set(ins.extra["source"][b]) == {"annotations/ann_b/task_7_export.zip"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(KPDELIVER), *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_inspect_and_convert_read_the_zip(tmp_path, layout):
    ext, bare, _, archive = LAYOUTS[layout]()
    (tmp_path / f"bare.{ext}").write_bytes(bare)
    (tmp_path / "export.zip").write_bytes(archive)
    reports = {}
    for name in (f"bare.{ext}", "export.zip"):
        proc = _cli("inspect", "--json", str(tmp_path / name))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        reports[name] = [
            {k: r[k] for k in ("instances", "num_keypoints", "visibility")} for r in json.loads(proc.stdout)
        ]
    assert reports["export.zip"] == reports[f"bare.{ext}"] and reports["export.zip"][0]["instances"] > 0

    proc = _cli("convert", str(tmp_path / "export.zip"), "--to", "coco", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [written] = list((tmp_path / "out").rglob("*.json"))
    from_zip = decode_bytes(written.name, written.read_bytes()).dataset
    from_bare = decode_bytes(f"bare.{ext}", bare).dataset
    assert len(from_zip.instances) == len(from_bare.instances)
    np.testing.assert_allclose(from_zip.instances.keypoints, from_bare.instances.keypoints, atol=1e-3)


def test_a_cvat_backup_is_refused_by_name():
    backup = _zip(
        {
            "task.json": b'{"name": "people", "labels": []}',
            "annotations.json": b"[]",
            "data/manifest.jsonl": b'{"version":"1.1"}\n',
            "data/filename000.jpg": _image("a.jpg", 8, 8),
        }
    )
    with pytest.raises(CodecError, match="CVAT task backup"):
        decode_bytes("task_7_backup.zip", backup)
    project = _zip({"project.json": b"{}", "task_7/task.json": b"{}", "task_7/annotations.json": b"[]"})
    with pytest.raises(CodecError, match="CVAT project backup"):
        decode_bytes("project_backup.zip", project)


def test_a_zip_of_several_subsets_names_them():
    data = COCO_VAL.read_bytes()
    archive = _zip(
        {"annotations/person_keypoints_train.json": data, "annotations/person_keypoints_val.json": data}
    )
    with pytest.raises(CodecError, match="person_keypoints_train.json.*person_keypoints_val.json"):
        decode_bytes("export.zip", archive)


def test_macos_resource_forks_in_a_rezipped_export_are_ignored():
    xml = CVAT_IMAGES.read_bytes()
    archive = _zip(
        {"annotations.xml": xml, "__MACOSX/._annotations.xml": b"\x00\x05\x16\x07", "._annotations.xml": b"x"}
    )
    assert len(decode_bytes("export.zip", archive).dataset.instances) == len(
        decode_bytes("a.xml", xml).dataset.instances
    )
