"""Ordinary photos at ingest: the displayed size of EXIF-rotated JPEGs, and a cheap decode check
that turns truncated, mislabelled and oversized images into findings instead of a crash."""

from __future__ import annotations

import pytest

from kpdeliver.images import ImageProblem, read_image_header
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.storage import LocalStore
from tests.photo_fixtures import jpeg, png, png_bomb, truncated_jpeg


@pytest.mark.parametrize(
    "orientation, displayed",
    [
        (None, (640, 480)),
        (1, (640, 480)),
        (3, (640, 480)),
        (5, (480, 640)),
        (6, (480, 640)),
        (7, (480, 640)),
        (8, (480, 640)),
    ],
)
def test_displayed_size_follows_exif_orientation(orientation, displayed):
    header = read_image_header(jpeg(640, 480, orientation=orientation))
    assert (header.width, header.height) == displayed
    assert header.orientation == (orientation or 1) and header.format == "JPEG"


@pytest.mark.parametrize(
    "data, check",
    [
        (truncated_jpeg(640, 480), "ingest.corrupt_image"),
        (png(64, 48)[:-40], "ingest.corrupt_image"),  # IDAT cut short
        (png_bomb(), "ingest.image_too_large"),  # DecompressionBombError, not an OSError
        (b"GIF89 not really", "ingest.unreadable_image"),
    ],
)
def test_bad_images_raise_a_problem_with_its_check(data, check):
    with pytest.raises(ImageProblem) as info:
        read_image_header(data)
    assert info.value.check == check


def test_ingest_records_displayed_sizes_and_keeps_the_rest(tmp_path):
    store = LocalStore(tmp_path / "batch")
    store.put("images/phone.jpg", jpeg(64, 48, orientation=6, seed=1))
    store.put("images/plain.jpg", jpeg(64, 48, seed=2))
    store.put("images/really_png.jpg", png(30, 20, seed=3))
    store.put("images/cut.jpg", truncated_jpeg(640, 480, seed=4))
    store.put("images/bomb.png", png_bomb())
    result = ingest_images(store)
    im = result.images
    sizes = {n: (w, h, o) for n, w, h, o in zip(im.file_name, im.width, im.height, im.orientation)}
    assert sizes == {"phone.jpg": (48, 64, 6), "plain.jpg": (64, 48, 1), "really_png.jpg": (30, 20, 1)}
    checks = {(r["check"], r["file_name"], r["severity"]) for r in result.findings.to_pylist()}
    assert checks == {
        ("ingest.corrupt_image", "images/cut.jpg", "error"),
        ("ingest.image_too_large", "images/bomb.png", "error"),
        ("ingest.extension_mismatch", "images/really_png.jpg", "info"),
    }
    assert (
        sorted(result.refused["key"].to_pylist()) == ["images/bomb.png", "images/cut.jpg"]
        and result.listed == 5
    )
