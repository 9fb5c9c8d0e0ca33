"""The typed COCO fast path (msgspec structs, keypoints parsed by Arrow's CSV reader) gives
exactly what the generic decoder gives, and hands every file it does not recognise exactly to
the generic decoder instead of guessing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from kpdeliver.codecs import CodecError
from kpdeliver.codecs.coco import decoder, typed
from kpdeliver.schema import COCO17

ROOT = Path(__file__).resolve().parents[3]
REAL = sorted(
    p
    for base in (ROOT / "tests/fixtures/real", ROOT.parent / "shared/fixtures/external")
    if base.exists()
    for p in base.rglob("*.json")
    if b'"annotations"' in p.read_bytes()[:2_000_000]
)
# Files with an "annotations" key that neither path reads as one COCO keypoints dataset: Label Studio
# exports (a JSON list) and a file of two keypoint categories.
REFUSED = {
    "labelstudio/multi_animal_from_dlc.json",
    "test_export_coco/data.json",
    "test_export_yolo/data_keypoints.json",
    "mixed_animals/annotations.json",
}


def name(p: Path) -> str:
    return p.parent.name + "/" + p.name


def assert_same_columns(a, b, where: str) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, dict):
            assert x.keys() == y.keys(), f"{where}.{f.name}"
            for key in x:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{where}.{f.name}[{key}]")
        elif x is None or y is None:
            assert x is None and y is None, f"{where}.{f.name}"
        else:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f"{where}.{f.name}")
            assert np.asarray(x).dtype == np.asarray(y).dtype, f"{where}.{f.name} dtype"


def assert_same_decoded(a, b) -> None:
    assert a.dataset.schema.keypoints == b.dataset.schema.keypoints
    assert a.dataset.categories == b.dataset.categories
    assert_same_columns(a.dataset.images, b.dataset.images, "images")
    assert_same_columns(a.dataset.instances, b.dataset.instances, "instances")
    assert a.findings.equals(b.findings)
    assert a.rejected.equals(b.rejected)


def both(data: bytes, schema=None):
    """(typed, generic) decodes of `data`; typed is None when it hands the file on."""
    try:
        fast = decoder.decode_typed(data, schema=schema, source="f.json", annotator="")
    except typed.NotTypical:
        fast = None
    slow = decoder.decode_generic(data, schema=schema, source="f.json", annotator="", category=None)
    return fast, slow


def test_the_shared_real_files_are_among_those_compared(external):
    assert any(p.is_relative_to(external) for p in REAL), f"no COCO file found under {external}"


@pytest.mark.parametrize("path", [p for p in REAL if name(p) not in REFUSED], ids=name)
def test_real_files_decode_the_same_either_way(path):
    fast, slow = both(path.read_bytes())
    if fast is not None:
        assert_same_decoded(fast, slow)


@pytest.mark.parametrize("path", [p for p in REAL if name(p) in REFUSED], ids=name)
def test_real_files_that_are_not_one_coco_dataset_are_refused_by_both_paths(path):
    with pytest.raises(CodecError):
        both(path.read_bytes())


def test_most_real_files_take_the_fast_path():
    taken = 0
    for path in REAL:
        try:
            decoder.decode_typed(path.read_bytes(), schema=None, source="f", annotator="")
            taken += 1
        except (typed.NotTypical, CodecError):
            pass
    assert taken >= 10, taken


def _doc(rows: list, *, indent=None) -> bytes:
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "keypoints": kp} for i, kp in enumerate(rows)]
    return json.dumps(
        {
            "images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.keypoints)}],
        },
        indent=indent,
    ).encode()


def _row(seed: int) -> list:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 600, size=(17, 2)).round(3)
    return [v for (x, y), f in zip(xy.tolist(), rng.integers(0, 3, 17).tolist()) for v in (x, y, f)]


def test_pretty_printed_and_exponent_numbers_take_the_fast_path_unchanged():
    rows = [_row(1), _row(2)]
    rows[1][0] = 1.5e2
    rows[1][3] = -0.0
    for indent in (None, 2):
        fast, slow = both(_doc(rows, indent=indent), schema=COCO17)
        assert fast is not None
        assert_same_decoded(fast, slow)
    assert fast.dataset.instances.keypoints[1, 0, 0] == 150.0


ODD_ROWS = {
    "nested triplets": lambda r: [r[i : i + 3] for i in range(0, 51, 3)],
    "null value": lambda r: [None, *r[1:]],
    "string value": lambda r: ["12", *r[1:]],
    "string nan": lambda r: ["nan", *r[1:]],
    "boolean value": lambda r: [True, *r[1:]],
    "short row": lambda r: r[:48],
    "long row": lambda r: [*r, 1, 2, 2],
    "a number, not a list": lambda r: 5,
    "empty list": lambda r: [],
}


@pytest.mark.parametrize("name", ODD_ROWS)
def test_odd_keypoint_rows_go_the_generic_way(name):
    rows = [_row(1), ODD_ROWS[name](_row(2)), _row(3)]
    data = _doc(rows)
    with pytest.raises(typed.NotTypical):
        decoder.decode_typed(data, schema=COCO17, source="f.json", annotator="")


def test_number_past_float64_goes_the_generic_way():
    text = _doc([_row(1)]).decode()
    first = json.loads(text)["annotations"][0]["keypoints"][0]
    data = text.replace(f'"keypoints": [{first}', '"keypoints": [1e999', 1).encode()
    assert b"[1e999" in data
    with pytest.raises(typed.NotTypical):
        decoder.decode_typed(data, schema=COCO17, source="f.json", annotator="")


@pytest.mark.parametrize("where", ["image", "annotation", "category", "top level"])
def test_a_duplicate_key_goes_the_generic_way(where):
    text = _doc([_row(1)]).decode()
    dup = {
        "image": ('"file_name": "a.jpg"', '"file_name": "a.jpg", "file_name": "b.jpg"'),
        "annotation": ('"image_id": 1', '"image_id": 1, "image_id": 1'),
        "category": ('"name": "person"', '"name": "person", "name": "cat"'),
        "top level": ('{"images"', '{"info": {}, "info": {}, "images"'),
    }[where]
    assert dup[0] in text
    data = text.replace(*dup, 1).encode()
    with pytest.raises(typed.NotTypical):
        typed.read(data)
    assert decoder.decode(data, schema=COCO17).findings.num_rows  # the generic path names it


def test_keys_spaced_before_the_colon_take_the_fast_path():
    data = _doc([_row(1), _row(2)]).replace(b'":', b'" :')
    fast, slow = both(data, schema=COCO17)
    assert fast is not None
    assert_same_decoded(fast, slow)


def test_more_keypoints_than_the_typed_columns_go_the_generic_way():
    k = typed._MAX_K + 1
    data = json.dumps(
        {
            "images": [{"id": 1, "file_name": "a.jpg", "width": 9, "height": 9}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": [1.0, 2.0, 2] * k}],
            "categories": [{"id": 1, "name": "mesh"}],
        }
    ).encode()
    with pytest.raises(typed.NotTypical):
        decoder.decode_typed(data, schema=None, source="f.json", annotator="")
    assert decoder.decode(data).dataset.instances.keypoints.shape == (1, k, 3)


def test_a_file_shaped_like_cocos_own_takes_the_fast_path_unchanged():
    """Polygons, crowds' RLE, licences and image URLs: skipped as raw text, never built."""
    from kpdeliver.synth.coco_shaped import coco_shaped

    data = coco_shaped(40, 300, seed=2)
    assert b'"counts":' in data and b'"coco_url":' in data and b'"segmentation":[[' in data
    fast, slow = both(data)
    assert fast is not None
    assert_same_decoded(fast, slow)


@pytest.mark.parametrize("where", ["crowd RLE", "licences"])
def test_a_duplicate_key_inside_a_skipped_field_goes_the_generic_way(where):
    from kpdeliver.synth.coco_shaped import coco_shaped

    data = coco_shaped(40, 300, seed=2)
    old, new = {
        "crowd RLE": (b'"size":[480,640]', b'"size":[480,640],"size":[1,1]'),
        "licences": (b'"name":"License 1"', b'"name":"License 1","name":"x"'),
    }[where]
    assert old in data
    with pytest.raises(typed.NotTypical):
        typed.read(data.replace(old, new, 1))


def test_count_keys_counts_quotes_before_colons_across_windows(monkeypatch):
    monkeypatch.setattr(typed, "_WINDOW", 7)
    text = b'{"a":1,"bb" :[{"c":"x\\":"}],"d"\n:2}'
    assert typed.count_keys(text) == 5  # a, bb (spaced), c, the escaped quote before a colon, d
