"""The pieces of the Label Studio integration that need no server: the tool: config section,
the labeling config, image references, and how a pull shapes an export."""

from __future__ import annotations

import pytest

from kpdeliver.codecs import label_studio as ls_codec
from kpdeliver.config import ConfigError, config_from_dict
from kpdeliver.schema import COCO17
from kpdeliver.tools.label_studio.labeling_config import labeling_config
from kpdeliver.tools.label_studio.pull import ProjectPull, audit_regions, batch_file_name, split_by_annotator

BASE = {"client": "acme", "dataset": "people", "source": "/b", "releases": "/r", "annotators": ["ann_a"]}


def test_tool_section_is_typed_and_checked():
    cfg = config_from_dict(
        {**BASE, "tool": {"url": "http://127.0.0.1:8080/", "users": {"Ada@Example.com": "ann_a"}}}
    )
    assert cfg.tool.url == "http://127.0.0.1:8080"
    assert cfg.tool.users == {"ada@example.com": "ann_a"}
    assert cfg.tool.project_title(client="acme", dataset="people", annotator="ann_a") == "acme/people — ann_a"
    with pytest.raises(ConfigError, match="annotator"):
        config_from_dict({**BASE, "tool": {"url": "http://x", "project": "{client} only"}})
    with pytest.raises(ConfigError, match="kind"):
        config_from_dict({**BASE, "tool": {"url": "http://x", "kind": "cvat"}})


def test_token_comes_from_the_named_variable(monkeypatch):
    cfg = config_from_dict({**BASE, "tool": {"url": "http://x", "token_env": "MY_LS_TOKEN"}})
    monkeypatch.delenv("MY_LS_TOKEN", raising=False)
    with pytest.raises(KeyError, match="MY_LS_TOKEN"):
        cfg.tool.token()
    monkeypatch.setenv("MY_LS_TOKEN", "abc")
    assert cfg.tool.token() == "abc"


def test_labeling_config_is_what_the_codec_reads():
    config = labeling_config(COCO17)
    names, category = ls_codec.config_keypoint_names(config)
    assert names == COCO17.keypoints and category == COCO17.category
    assert 'background="#1f77b4"' in config and 'perRegion="true"' in config
    left, right = COCO17.index("left_wrist"), COCO17.index("right_wrist")
    assert f'"left_wrist" model_index="{left}" background="#1f77b4"' in config
    assert f'"right_wrist" model_index="{right}" background="#d62728"' in config


@pytest.mark.parametrize(
    "data, name",
    [
        ({"file_name": "sub/a.jpg", "image": "/data/local-files/?d=x/images/other.jpg"}, "sub/a.jpg"),
        ({"image": "/data/local-files/?d=acme/batch/images/sub/a%20b.jpg"}, "sub/a b.jpg"),
        ({"image": "/data/upload/3/1a2b3c4d-scene_001.jpg"}, "scene_001.jpg"),
        ({"image": "scene_002.jpg"}, "scene_002.jpg"),
    ],
)
def test_batch_file_name_from_task_data(data, name):
    assert batch_file_name(data) == name


def test_boxes_get_audit_ids_and_children_follow():
    result = [
        {"id": "Xy1", "type": "rectanglelabels", "value": {}},
        {"id": "p1", "type": "keypointlabels", "parentID": "Xy1", "value": {}},
        {"id": "p1", "type": "choices", "value": {"choices": ["occluded"]}},
        {"id": "Q2", "type": "rectanglelabels", "value": {}},
        {"type": "relation", "from_id": "p9", "to_id": "Q2"},
    ]
    out = audit_regions(result, 41)
    assert [r.get("id") for r in out] == ["kp-41001", "p1", "p1", "kp-41002", None]
    assert out[0]["ls_id"] == "Xy1" and out[1]["parentID"] == "kp-41001" and out[4]["to_id"] == "kp-41002"
    assert "ls_id" not in out[2]  # a point's choice keeps the point's id


def test_only_finished_work_of_mapped_people_is_kept():
    def ann(i, email, **kw):
        return {"id": i, "completed_by": {"id": 1, "email": email}, "result": [], **kw}

    tasks = [
        {
            "id": 7,
            "data": {"file_name": "a.jpg", "image": "/data/local-files/?d=b/images/a.jpg", "role": "gold"},
            "drafts": [{"id": 1}],
            "annotations": [ann(1, "ada@x.org"), ann(2, "bo@x.org", was_cancelled=True), ann(3, "eve@x.org")],
        },
        {"id": 5, "data": {"file_name": "c.jpg"}, "annotations": [ann(4, "bo@x.org")]},
    ]
    report = ProjectPull("ann_a", "t")
    out = split_by_annotator(tasks, {"ada@x.org": "ann_a", "bo@x.org": "ann_b"}, report)
    assert (report.finished, report.skipped, report.drafts, report.unmapped) == (2, 1, 1, {"eve@x.org": 1})
    assert [t["id"] for t in out["ann_a"]] == [7] and [t["id"] for t in out["ann_b"]] == [5]
    assert out["ann_a"][0]["data"]["image"] == "a.jpg"
    assert out["ann_a"][0]["data"]["ls_image"] == "/data/local-files/?d=b/images/a.jpg"
