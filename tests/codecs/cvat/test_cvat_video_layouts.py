"""CVAT video skeleton tracks in both layouts: the export layout (one sub-track per element) and the
layout CVAT's documentation shows (each <skeleton frame=> holding its <points>)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kpdeliver.codecs import cvat
from tests.codecs.cvat.test_cvat_codec import _META

REAL_VIDEO = (
    Path(__file__).resolve().parents[2] / "fixtures" / "real" / "cvat" / "xml_format.example-video.xml"
)

# (frame, outside of the whole skeleton, tip xy, base xy, base occluded)
_KEYS = ((0, False, "0,0", "10,10", "1"), (2, True, "4,2", "10,10", "0"), (4, False, "8,4", "12,12", "0"))


def _documented() -> bytes:
    shapes = "".join(
        f'<skeleton frame="{f}" keyframe="1" z_order="0">'
        f'<points label="tip" outside="{int(out)}" occluded="0" keyframe="1" points="{tip}"/>'
        f'<points label="base" outside="{int(out)}" occluded="{occ}" keyframe="1" points="{base}"/></skeleton>'
        for f, out, tip, base, occ in _KEYS
    )
    return (
        f"<annotations><version>1.1</version>{_META.format(filt='step=2')}"
        f'<track id="4" label="hand" source="manual">{shapes}</track></annotations>'
    ).encode()


def _exported() -> bytes:
    skel = "".join(
        f'<skeleton frame="{f}" keyframe="1" outside="{int(out)}" points=""/>' for f, out, *_ in _KEYS
    )
    tip = "".join(
        f'<points frame="{f}" keyframe="1" outside="{int(out)}" points="{p}"/>' for f, out, p, _, _ in _KEYS
    )
    base = "".join(
        f'<points frame="{f}" keyframe="1" outside="{int(out)}" occluded="{o}" points="{p}"/>'
        for f, out, _, p, o in _KEYS
    )
    return (
        f"<annotations><version>1.1</version>{_META.format(filt='step=2')}"
        f'<track id="4" label="hand">{skel}<track id="0" label="tip">{tip}</track>'
        f'<track id="1" label="base">{base}</track></track></annotations>'
    ).encode()


def test_documented_layout_decodes_like_the_export_layout():
    doc, exp = cvat.decode(_documented()).dataset, cvat.decode(_exported()).dataset
    assert doc.instances.frame.tolist() == exp.instances.frame.tolist() == [0, 4]  # frame 2: all outside
    np.testing.assert_array_equal(doc.instances.keypoints, exp.instances.keypoints)
    assert doc.instances.keypoints[0].tolist() == [[0, 0, 2], [10, 10, 1]]
    assert doc.instances.keypoints[1].tolist() == [[8, 4, 2], [12, 12, 2]]
    assert (doc.instances.track_id == 4).all()


def test_cvat_documentation_video_example_gives_the_visible_keyframes_only():
    d = cvat.decode(REAL_VIDEO.read_bytes()).dataset
    assert d.instances.frame.tolist() == [0, 6, 13]
    assert d.instances.keypoints[1].tolist() == [
        [120.07, 270.59, 2],
        [140.87, 350.23, 2],
        [210.37, 260.27, 2],
    ]


def test_video_encode_ends_a_track_at_a_gap_instead_of_bridging_it():
    d = cvat.decode(REAL_VIDEO.read_bytes()).dataset  # one track at frames 0, 6, 13
    back = cvat.decode(cvat.encode(d, mode="video")).dataset
    assert back.instances.frame.tolist() == [0, 6, 13]
    np.testing.assert_array_equal(back.instances.keypoints, d.instances.keypoints)
