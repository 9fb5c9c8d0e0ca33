"""CVAT for images / for video 1.1 XML codec."""

from __future__ import annotations

import numpy as np
import pytest

from kpdeliver.codecs import CodecError, cvat
from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.schema import COCO17
from tests.codecs.conformance import CodecConformance, assert_same_keypoints, make_dataset


class TestCvatImagesConformance(CodecConformance):
    def roundtrip(self, dataset):
        return cvat.decode(cvat.encode(dataset), schema=dataset.schema).dataset


_META = """<meta><task><start_frame>0</start_frame><frame_filter>{filt}</frame_filter>
<original_size><width>100</width><height>50</height></original_size><labels>
<label><name>hand</name><type>skeleton</type><svg>&lt;line data-type="edge" data-node-from="1" data-node-to="2"&gt;&lt;/line&gt;
&lt;circle data-node-id="1" data-label-name="tip"&gt;&lt;/circle&gt;&lt;circle data-node-id="2" data-label-name="base"&gt;&lt;/circle&gt;</svg></label>
<label><name>tip</name><type>points</type><parent>hand</parent></label>
<label><name>base</name><type>points</type><parent>hand</parent></label>
</labels></task></meta>"""


def _image_xml(points: str) -> bytes:
    return (
        f"<annotations><version>1.1</version>{_META.format(filt='')}"
        f'<image id="0" name="a.jpg" width="100" height="50"><skeleton label="hand" points="">'
        f"{points}</skeleton></image></annotations>"
    ).encode()


def test_skeleton_definition_gives_schema_with_svg_edges():
    d = cvat.decode(_image_xml('<points label="tip" points="1,2"/><points label="base" points="3,4"/>'))
    assert d.dataset.schema.keypoints == ("tip", "base")
    assert d.dataset.schema.skeleton == ((0, 1),)


def test_outside_occluded_and_absent_map_to_flags_with_audit():
    xml = _image_xml(
        '<points label="tip" outside="1" points="7.5,8.5"/><points label="base" occluded="1" points="3,4"/>'
    )
    ins = cvat.decode(xml).dataset.instances
    assert ins.keypoints[0].tolist() == [[0, 0, 0], [3, 4, 1]]
    assert ins.extra["outside_x"][0, 0] == 7.5 and ins.extra["outside_y"][0, 0] == 8.5
    assert np.isnan(ins.extra["outside_x"][0, 1])
    absent = cvat.decode(_image_xml('<points label="base" points="3,4"/>')).dataset.instances
    assert absent.keypoints[0, 0].tolist() == [0, 0, 0] and np.isnan(absent.extra["outside_x"][0, 0])


def test_outside_position_survives_reencoding():
    xml = _image_xml('<points label="tip" outside="1" points="7.5,8.5"/><points label="base" points="3,4"/>')
    again = cvat.decode(cvat.encode(cvat.decode(xml).dataset)).dataset.instances
    assert again.extra["outside_x"][0, 0] == 7.5


def _video_xml(filt: str, tip: str, base: str) -> bytes:
    return (
        f"<annotations><version>1.1</version>{_META.format(filt=filt)}"
        f'<track id="4" label="hand"><skeleton frame="0" keyframe="1" outside="0" points=""/>'
        f'<skeleton frame="4" keyframe="1" outside="0" points=""/>'
        f'<track id="0" label="tip">{tip}</track><track id="1" label="base">{base}</track></track></annotations>'
    ).encode()


def test_track_keyframes_are_interpolated_per_frame():
    tip = '<points frame="0" keyframe="1" outside="0" points="0,0"/><points frame="4" keyframe="1" outside="0" points="8,4"/>'
    base = (
        '<points frame="0" keyframe="1" outside="0" points="10,10"/>'
        '<points frame="2" keyframe="1" outside="1" points="10,10"/>'
    )
    d = cvat.decode(_video_xml("step=2", tip, base)).dataset
    ins = d.instances
    assert ins.frame.tolist() == [0, 2, 4] and (ins.track_id == 4).all()
    assert ins.keypoints[:, 0].tolist() == [[0, 0, 2], [4, 2, 2], [8, 4, 2]]  # linear between keyframes
    assert ins.keypoints[:, 1, 2].tolist() == [2, 0, 0]  # outside at 2 ends the element's track
    assert d.images.width.tolist() == [100, 100, 100]


def test_video_roundtrip_keeps_frames_and_tracks():
    tip = '<points frame="0" keyframe="1" outside="0" points="0,0"/><points frame="4" keyframe="1" outside="0" points="8,4"/>'
    base = '<points frame="0" keyframe="1" outside="0" occluded="1" points="10,10"/>'
    d = cvat.decode(_video_xml("step=2", tip, base)).dataset
    back = cvat.decode(cvat.encode(d, mode="video")).dataset
    np.testing.assert_array_equal(back.instances.keypoints, d.instances.keypoints)
    assert back.instances.frame.tolist() == d.instances.frame.tolist()


def test_element_names_map_onto_a_schema_by_alias():
    ds = make_dataset(COCO17, 1, n_images=1, max_per_image=1)
    xml = cvat.encode(ds).decode()
    for name in ("left_shoulder", "right_shoulder"):
        xml = xml.replace(
            f"<name>{name}</name>", f"<name>{name[0].upper()}{name.split('_')[1].capitalize()}</name>"
        )
        xml = xml.replace(f'label="{name}"', f'label="{name[0].upper()}{name.split("_")[1].capitalize()}"')
    back = cvat.decode(xml.encode(), schema=COCO17).dataset
    assert_same_keypoints(ds, back)


def test_free_points_of_the_schema_label_with_wrong_count_are_held_back():
    xml = (
        f'<annotations><version>1.1</version>{_META.format(filt="")}<image id="0" name="a.jpg" width="9" height="9">'
        '<points label="hand" points="1,2;3,4;5,6"/></image></annotations>'
    ).encode()
    d = cvat.decode(xml, source="t.xml")
    assert len(d.dataset.instances) == 0 and d.rejected.num_rows == 1
    assert (
        "t.xml" in d.findings["message"][0].as_py() and "field 'points'" in d.findings["message"][0].as_py()
    )


def test_entity_expansion_is_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx"><!ENTITY y "&x;&x;&x;">]><annotations>&y;</annotations>'
    with pytest.raises(CodecError, match="bomb.xml"):
        cvat.decode(bomb, source="bomb.xml")


def test_schema_from_cvat_file(tmp_path):
    p = tmp_path / "skeleton.xml"
    p.write_bytes(_image_xml(""))
    assert resolve_schema(str(p)).keypoints == ("tip", "base")


def test_a_second_skeleton_that_does_not_fit_the_schema_is_held_back_not_the_file():
    ds = make_dataset(COCO17, 2, n_images=1, max_per_image=1)
    xml = cvat.encode(ds).decode()
    extra_label = (
        "<label><name>paw</name><type>skeleton</type><svg></svg></label>"
        "<label><name>toe</name><type>points</type><parent>paw</parent></label>"
    )
    xml = xml.replace("</labels>", extra_label + "</labels>", 1)
    xml = xml.replace(
        "</image>", '<skeleton label="paw" points=""><points label="toe" points="1,1"/></skeleton></image>', 1
    )
    d = cvat.decode(xml.encode(), schema=COCO17, source="two.xml")
    assert_same_keypoints(ds, d.dataset)
    assert d.rejected["check"].to_pylist() == ["schema.unknown_category"]
    assert "'paw'" in d.findings["message"][0].as_py()
    with pytest.raises(CodecError, match="skeleton label 'hand'.*incomplete"):
        cvat.decode(_image_xml(""), schema=COCO17)
