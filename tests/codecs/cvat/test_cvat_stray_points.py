"""A CVAT free `<points>` shape of another label than the skeleton (CVAT's documented example has
a 4-point `wheel` beside the 3-point skeleton `s1`) is reported, naming file, image and label, and
never becomes an instance, whatever its point count; nor is it counted as a held-back instance."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpdeliver.codecs import cvat

REAL = Path(__file__).resolve().parent.parent.parent / "fixtures" / "real" / "cvat"
WHEEL = 'points label="wheel" points="574.90,939.48;1170.16,907.90;1130.69,445.26;600.16,459.48"'


def _example(points: str | None = None) -> bytes:
    xml = (REAL / "xml_format.example-images.xml").read_text()
    assert WHEEL in xml
    return (xml.replace(WHEEL, f'points label="wheel" points="{points}"') if points else xml).encode()


@pytest.mark.parametrize(
    "points",
    [None, "574.90,939.48;1170.16,907.90;1130.69,445.26"],
    ids=["4-points-as-written", "3-points-as-many-as-the-skeleton"],
)
def test_free_points_of_another_label_are_reported_not_instances(points):
    d = cvat.decode(_example(points), source="annotations.xml")
    assert len(d.dataset.instances) == 1  # the one skeleton `s1`
    assert d.rejected.num_rows == 0
    stray = [r for r in d.findings.to_pylist() if r["check"] == "decode.other_label"]
    assert len(stray) == 1 and stray[0]["severity"] == "warning"
    assert stray[0]["image_id"] == 0
    for part in ("annotations.xml", "filename000.jpg", "'wheel'"):
        assert part in stray[0]["message"]
    assert {c.name for c in d.dataset.categories} == {"s1"}
