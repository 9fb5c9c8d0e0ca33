"""A Supervisely project as the registry and the readers meet it: sniffed (an annotation file, its
meta.json), found as a folder by a meta.json that is Supervisely's, read from a .zip or .tar, and
collected from a batch's annotations/<annotator>/."""

from __future__ import annotations

import io
import tarfile
import zipfile

import numpy as np
import pytest

from kpdeliver.codecs import CodecError, registry
from kpdeliver.codecs.protocol import DecodeOptions
from kpdeliver.collect.files import detect_format, read_annotations, write_dataset
from kpdeliver.collect.inspect import inspect_path
from kpdeliver.schema import HAND21
from tests.codecs.conformance import assert_same_keypoints, make_dataset
from tests.codecs.supervisely import sly_docs


def _write(root, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def _zip(files: dict[str, bytes], top: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rel, data in files.items():
            zf.writestr(top + rel, data)
        zf.writestr("__MACOSX/._meta.json", b"junk")
    return buf.getvalue()


def _tar(files: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"./proj/{rel}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_annotation_file_and_meta_are_sniffed_as_supervisely():
    files = sly_docs.project()
    assert registry.sniff_bytes("a.jpg.json", files["ds0/ann/a.jpg.json"]) == "supervisely"
    assert registry.sniff_bytes("meta.json", files["meta.json"]) == "supervisely-config"
    with pytest.raises(CodecError, match="meta.json, not annotations; read the project folder"):
        registry.decode_bytes("meta.json", files["meta.json"])
    with pytest.raises(CodecError, match="read with its project's meta.json"):
        registry.decode_bytes("a.jpg.json", files["ds0/ann/a.jpg.json"])
    d = registry.decode_bytes("ds0/ann/a.jpg.json", files["ds0/ann/a.jpg.json"], metadata=files["meta.json"])
    assert d.dataset.images.file_name.tolist() == ["ds0/a.jpg"] and len(d.dataset.instances) == 1


@pytest.mark.parametrize("pack", ["zip", "zip-top-folder", "tar", "tar.gz"])
def test_a_project_archive_decodes_as_the_project(pack):
    files = sly_docs.project()
    data = {
        "zip": lambda: _zip(files),
        "zip-top-folder": lambda: _zip(files, "export/proj/"),
        "tar": lambda: _tar(files),
        "tar.gz": lambda: _tar(files, "w:gz"),
    }[pack]()
    d = registry.decode_bytes(f"proj.{pack}", data, source="proj")
    direct = registry.codec("supervisely").decode(files["meta.json"], DecodeOptions(files=files))
    assert_same_keypoints(direct.dataset, d.dataset)
    assert d.findings.num_rows == direct.findings.num_rows == 2


def test_a_tar_without_a_project_and_a_broken_tar_are_refused_in_one_sentence():
    with pytest.raises(CodecError, match="holds no Supervisely project"):
        registry.decode_bytes("x.tar", _tar({"notes/readme.json": b"{}"}))
    with pytest.raises(CodecError, match="broken tar"):
        registry.decode_bytes("x.tar.gz", b"\x1f\x8b" + b"\x00" * 300)


def test_a_folder_is_a_project_only_when_its_meta_json_is_supervisely(tmp_path):
    _write(tmp_path / "proj", sly_docs.project())
    assert detect_format(tmp_path / "proj") == "supervisely"
    [report] = inspect_path(tmp_path / "proj")
    assert (report.format, report.images, report.instances) == ("supervisely", 3, 2)
    other = tmp_path / "coco"
    write_dataset(make_dataset(HAND21, 1, n_images=1, max_per_image=1), other, to="coco")
    (other / "meta.json").write_text('{"author": "someone", "version": 2}')  # a meta.json of something else
    assert detect_format(other) == "coco"


def test_write_read_back_and_one_file_of_the_written_project(tmp_path):
    ds = make_dataset(HAND21, 4, n_images=3, max_per_image=2)
    write_dataset(ds, tmp_path / "out", to="supervisely")
    assert_same_keypoints(ds, read_annotations(tmp_path / "out").dataset)
    one = read_annotations(tmp_path / "out" / "dir" / "ann" / "img_0001.jpg.json").dataset
    assert one.images.file_name.tolist() == ["dir/img_0001.jpg"]
    np.testing.assert_array_equal(
        one.instances.keypoints, ds.instances.keypoints[ds.instances.image_id == 20]
    )
    lost = tmp_path / "lost.jpg.json"
    lost.write_bytes(sly_docs.project()["ds0/ann/a.jpg.json"])
    with pytest.raises(CodecError, match="no meta.json of its project"):
        read_annotations(lost)


@pytest.mark.parametrize("packed", [True, False], ids=["tar", "unpacked"])
def test_a_project_under_annotations_annotator_is_collected(tmp_path, packed):
    from PIL import Image

    from kpdeliver.collect.exports import collect_exports
    from kpdeliver.ingest.batch import ingest_images
    from kpdeliver.model import Dataset, Instances
    from kpdeliver.storage import LocalStore

    store = LocalStore(tmp_path)
    truth = make_dataset(HAND21, 9, n_images=3, max_per_image=2)
    for i, (name, w, h) in enumerate(zip(truth.images.file_name, truth.images.width, truth.images.height)):
        buf = io.BytesIO()
        Image.new("RGB", (int(w), int(h)), (i, 0, 0)).save(buf, "PNG")
        store.put(f"images/{name}", buf.getvalue())
    project = registry.encode_files(truth, "supervisely")
    if packed:
        store.put("annotations/ann_a/project.tar", _tar(project))
    else:  # as Supervisely's download unpacks: meta.json, <ds>/ann/*.json, <ds>/img/* beside them
        for rel, data in project.items():
            store.put(f"annotations/ann_a/proj/{rel}", data)
        store.put("annotations/ann_a/proj/ds0/img/a.png", b"not an export")
    batch = ingest_images(store)
    res = collect_exports(store, Dataset(HAND21, batch.images, Instances.empty(21)), ["ann_a"])
    assert "error" not in res.findings["severity"].to_pylist()
    got = res.dataset.instances
    assert len(got) == len(truth.instances) and set(got.annotator) == {"ann_a"}
    assert_same_keypoints(truth, res.dataset.replace(instances=got))
