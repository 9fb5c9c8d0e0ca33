"""The codec registry and protocol: every format answers through one `Codec`, sniffing loads no
decoder, and one `ItemProblem` gives the finding and the quarantine row."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kpdeliver.codecs import REJECTED_SCHEMA, ItemProblem, registry
from kpdeliver.codecs.problems import rejected_table
from kpdeliver.codecs.protocol import EncodeOptions
from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.findings import FINDINGS_SCHEMA
from kpdeliver.schema import COCO17, DEFAULT_SIGMA, HAND21
from tests.codecs.conformance import assert_same_keypoints, make_dataset


@pytest.mark.parametrize("fmt", [f for f in registry.FORMATS if not registry.codec(f).folder_markers])
def test_every_file_format_round_trips_through_its_codec_and_is_sniffed_back(fmt):
    codec = registry.codec(fmt)
    assert codec.name == fmt
    ds = make_dataset(HAND21, 3, n_images=2, max_per_image=2)
    files = registry.encode_files(ds, fmt, EncodeOptions())
    ((name, data),) = [
        (n, b) for n, b in files.items() if not registry.is_metadata(registry.sniff_bytes(n, b))
    ]
    assert registry.sniff_bytes(name, data) == fmt
    back = registry.decode_bytes(name, data, schema=HAND21, source=name).dataset
    assert_same_keypoints(ds, back)


def test_yolo_is_a_folder_format_found_by_its_marker():
    assert registry.folder_codec(lambda name: name == "data.yaml").name == "yolo"
    assert registry.folder_codec(lambda name: False) is None
    files = registry.encode_files(
        make_dataset(COCO17, 1, n_images=1, max_per_image=1), "yolo", EncodeOptions()
    )
    assert "data.yaml" in files and any(k.startswith("labels/train/") for k in files)


def test_unknown_format_is_refused_with_the_list():
    with pytest.raises(ValueError, match="use one of coco, cvat, label-studio, yolo"):
        registry.codec("voc")


def test_sniffing_imports_no_decoder():
    code = (
        "import sys; from kpdeliver.codecs import registry;"
        "kinds = [registry.sniff_bytes(n, b) for n, b in [('a.json', b'{\"images\": []}'), ('a.xml', b'<annotations>'),"
        " ('c.xml', b'<View></View>'), ('t.json', b'[{\"data\": {}, \"annotations\": []}]')]];"
        "assert kinds == ['coco', 'cvat', 'label-studio-config', 'label-studio'], kinds;"
        "loaded = [m for m in sys.modules if m.startswith('kpdeliver.codecs.') and m.endswith(('.decoder', '.encoder'))];"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_problem_gives_a_finding_and_a_rejected_row_that_agree():
    p = ItemProblem(
        "schema.keypoint_count",
        "a.json",
        "a.json: annotation id=4 (#0), field 'keypoints': 3 keypoints",
        field="keypoints",
        image_id=2,
        annotation_id=4,
        file_name="x.jpg",
        annotator="ann",
        value=3.0,
        raw=json.dumps({"id": 4}),
    )
    f = p.finding().to_pylist()[0]
    r = rejected_table([p]).to_pylist()[0]
    assert p.finding().schema.names == FINDINGS_SCHEMA.names
    assert (
        f["check"],
        f["message"],
        f["annotation_id"],
        f["image_id"],
        f["annotator"],
        f["source"],
        f["value"],
    ) == (r["check"], r["reason"], r["annotation_id"], r["image_id"], r["annotator"], r["source"], 3.0)
    assert f["severity"] == "error" and f["file_name"] == "x.jpg" and r["raw"] == '{"id": 4}'
    assert rejected_table([]).schema == REJECTED_SCHEMA


def test_an_absent_id_is_null_in_the_finding():
    f = (
        ItemProblem("schema.bad_type", "a.json", "a.json: annotation #0 is not an object")
        .finding()
        .to_pylist()[0]
    )
    assert f["annotation_id"] is None and f["image_id"] is None and f["annotator"] is None


def test_a_coco_item_held_back_is_one_finding_and_one_rejected_row():
    from kpdeliver.codecs import coco

    ds = make_dataset(COCO17, 4, n_images=1, max_per_image=2)
    doc = json.loads(coco.encode(ds))
    doc["annotations"].append({"id": 99, "image_id": int(ds.images.id[0]), "keypoints": [1, 2, 2] * 5})
    d = coco.decode(json.dumps(doc).encode(), schema=COCO17, source="a.json", annotator="ann")
    held = d.findings.filter(np.array([c.startswith("schema.") for c in d.findings["check"].to_pylist()]))
    assert held["check"].to_pylist() == d.rejected["check"].to_pylist() == ["schema.keypoint_count"]
    assert held["message"].to_pylist() == d.rejected["reason"].to_pylist()
    assert held["annotation_id"].to_pylist() == d.rejected["annotation_id"].to_pylist() == [99]


def test_schema_from_metadata_reads_a_cvat_skeleton_and_a_label_studio_config(tmp_path):
    from kpdeliver.codecs import cvat, label_studio

    ds = make_dataset(HAND21, 2, n_images=1, max_per_image=1)
    (tmp_path / "task.xml").write_bytes(cvat.encode(ds))
    (tmp_path / "config.xml").write_text(label_studio.label_config(HAND21))
    for name in ("task.xml", "config.xml"):
        schema = resolve_schema(tmp_path / name)
        assert schema.keypoints == HAND21.keypoints
        assert schema.sigmas == (DEFAULT_SIGMA,) * HAND21.num_keypoints
