"""File and folder level: detection, sniffing, zips, image sizes from headers, merging, writing."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from kpdeliver.codecs import CodecError, coco, cvat
from kpdeliver.codecs.registry import decode_bytes, sniff_bytes
from kpdeliver.collect.files import detect_format, read_annotations, write_dataset
from kpdeliver.schema import COCO17, HAND21
from tests.codecs.conformance import assert_same_keypoints, make_dataset


@pytest.mark.parametrize("to", ["coco", "yolo", "cvat", "label-studio"])
def test_write_then_detect_and_read_back(tmp_path, to):
    ds = make_dataset(HAND21, 5, n_images=3, max_per_image=2)
    for r, (w, h) in enumerate(zip(ds.images.width, ds.images.height)):  # YOLO reads sizes from the images
        (tmp_path / "images" / "dir").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (int(w), int(h))).save(
            tmp_path / "images" / f"{ds.images.file_name[r].replace('/', '__')}"
        )
    out = tmp_path / to
    write_dataset(ds, out, to=to)
    assert detect_format(out) == to
    if to == "yolo":
        for f in (tmp_path / "images").iterdir():
            (out / "images" / "train").mkdir(parents=True, exist_ok=True)
            f.rename(out / "images" / "train" / f.name)
    back = read_annotations(out, schema=HAND21).dataset

    def key(name: str) -> str:  # YOLO names images by the flat stem under images/<split>/
        return name.rsplit("/", 1)[-1] if name.startswith("images/") else name.replace("/", "__")

    assert_same_keypoints(ds, back, key=key)


def test_sniffing_never_needs_a_full_parse():
    assert sniff_bytes("a.json", b'  {"images": [], "annotations": []}') == "coco"
    assert sniff_bytes("a.json", b'[{"id": 1, "data": {"image": "x"}, "annotations": []}]') == "label-studio"
    assert sniff_bytes("a.xml", b"<?xml version='1.0'?><annotations>") == "cvat"
    assert sniff_bytes("c.xml", b"<View><KeyPointLabels/></View>") == "label-studio-config"
    assert sniff_bytes("a.bin", b"\x00\x01") == "unknown"


def test_decode_bytes_reads_a_zip_download_and_names_the_inner_file():
    ds = make_dataset(COCO17, 1, n_images=1, max_per_image=2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("annotations.xml", cvat.encode(ds))
    d = decode_bytes(
        "job.zip", buf.getvalue(), schema=COCO17, annotator="ann", source="annotations/ann/job.zip"
    )
    assert_same_keypoints(ds, d.dataset)
    assert d.dataset.images.source[0] == "annotations/ann/job.zip!annotations.xml"
    with pytest.raises(CodecError, match="notes.txt: not a keypoint export"):
        decode_bytes("notes.txt", b"hello", schema=COCO17)


def test_label_studio_sizes_come_from_image_headers_beside_the_export(tmp_path):
    Image.new("RGB", (40, 20)).save(tmp_path / "a.jpg")
    task = [
        {
            "id": 1,
            "data": {"image": "/data/upload/3/a.jpg"},
            "annotations": [
                {
                    "result": [
                        {
                            "id": "k",
                            "type": "keypointlabels",
                            "value": {"x": 50, "y": 50, "keypointlabels": ["nose"]},
                        }
                    ]
                }
            ],
        }
    ]
    (tmp_path / "export.json").write_text(json.dumps(task))
    d = read_annotations(tmp_path / "export.json", schema=COCO17).dataset
    assert d.instances.keypoints[0, 0].tolist() == [20.0, 10.0, 2.0]


def test_folder_of_files_merges_with_colliding_ids_shifted(tmp_path):
    a = make_dataset(COCO17, 1, n_images=2, max_per_image=2)
    b = make_dataset(COCO17, 2, n_images=2, max_per_image=2)
    b.images.file_name[:] = ["other/x.jpg", "other/y.jpg"]
    (tmp_path / "a.json").write_bytes(coco.encode(a))
    (tmp_path / "b.json").write_bytes(coco.encode(b))
    (tmp_path / "junk.json").write_bytes(b'[{"joints": [], "joints_vis": []}]')
    d = read_annotations(tmp_path, schema=COCO17)
    ds = d.dataset
    assert len(ds.images) == 4 and len(np.unique(ds.images.id)) == 4
    assert len(ds.instances) == len(a.instances) + len(b.instances) and len(
        np.unique(ds.instances.id)
    ) == len(ds.instances)
    assert (ds.image_index() >= 0).all()
    assert (
        d.findings["check"].to_pylist() == ["collect.unreadable_file"]
        and "junk.json" in d.findings["message"][0].as_py()
    )


def test_cvat_video_frames_take_the_real_image_names(external):
    d = read_annotations(external / "datumaro-cvat-ai/cvat_for_video").dataset
    assert d.images.file_name.tolist() == ["frame_000010.png", "frame_000013.png", "frame_000016"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=5,
)


def _paths(doc, prefix=()):
    """Every (container, key) in a JSON document."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for key, value in items:
        yield doc, key
        yield from _paths(value, (*prefix, key))


@pytest.mark.parametrize("fmt", ["coco", "label-studio"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_corrupted_field_is_a_finding_or_a_codec_error_never_a_crash(fmt, data):
    ds = make_dataset(COCO17, 11, n_images=2, max_per_image=2)
    from kpdeliver.codecs import label_studio

    doc = json.loads(coco.encode(ds) if fmt == "coco" else label_studio.encode(ds))
    spots = list(_paths(doc))
    container, key = data.draw(st.sampled_from(spots))
    container[key] = data.draw(_JSON)
    try:
        decode_bytes("x.json", json.dumps(doc).encode(), schema=COCO17, source="x.json")
    except CodecError as e:
        assert "x.json" in str(e)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_corrupted_cvat_attribute_never_crashes(data):
    xml = cvat.encode(make_dataset(COCO17, 12, n_images=1, max_per_image=2)).decode()
    attrs = [m for m in ("points=", "outside=", "occluded=", "width=", "height=", "id=") if m in xml]
    attr = data.draw(st.sampled_from(attrs))
    junk = data.draw(st.sampled_from(['"x"', '""', '"1,2,3"', '"nan,nan"', '"-1e309,5"', '";;"']))
    xml = xml.replace(f'{attr}"', f'{attr}{junk} data-was="', 1)
    try:
        decode_bytes("x.xml", xml.encode(), schema=COCO17, source="x.xml")
    except CodecError as e:
        assert "x.xml" in str(e)
