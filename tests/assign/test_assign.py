import numpy as np
import orjson
import pyarrow.parquet as pq
from typer.testing import CliRunner

from kpdeliver.assign.assignments import assign_annotators, split_images
from kpdeliver.cli import app
from kpdeliver.codecs import cvat
from kpdeliver.collect.files import read_annotations
from kpdeliver.config import Assignment, Splits
from kpdeliver.model import Images
from kpdeliver.schema import COCO17
from kpdeliver.synth import make_demo_batch


def images(n):
    return Images.build(id=np.arange(1, n + 1), file_name=[f"img_{i:03d}.jpg" for i in range(n)])


def test_assignment_is_deterministic_balanced_and_seeded():
    im = images(30)
    a1 = assign_annotators(im, ["a", "b", "c"], Assignment(seed=1))
    a2 = assign_annotators(im, ["a", "b", "c"], Assignment(seed=1))
    a3 = assign_annotators(im, ["a", "b", "c"], Assignment(seed=2))
    assert a1.equals(a2)
    assert not a1.equals(a3)
    counts = [a1["annotator"].to_pylist().count(a) for a in "abc"]
    assert sum(counts) == 30 and min(counts) >= 4  # hash-balanced, not exactly equal
    assert sorted(a1["image_id"].to_pylist()) == list(range(1, 31))


def test_adding_an_image_does_not_move_the_others():
    a = assign_annotators(images(30), ["a", "b"], Assignment(seed=0)).to_pylist()
    b = assign_annotators(images(31), ["a", "b"], Assignment(seed=0)).to_pylist()
    owner_a = {r["file_name"]: r["annotator"] for r in a}
    owner_b = {r["file_name"]: r["annotator"] for r in b}
    assert all(owner_a[f] == owner_b[f] for f in owner_a)


def test_adding_an_annotator_moves_only_their_share():
    im = images(300)
    two = {
        r["file_name"]: r["annotator"] for r in assign_annotators(im, ["a", "b"], Assignment()).to_pylist()
    }
    three = {
        r["file_name"]: r["annotator"]
        for r in assign_annotators(im, ["a", "b", "c"], Assignment()).to_pylist()
    }
    moved = [f for f in two if two[f] != three[f]]
    assert moved and all(three[f] == "c" for f in moved)


def test_overlap_and_gold_roles():
    im = images(20)
    t = assign_annotators(im, ["a", "b"], Assignment(overlap=0.2, gold=["img_000.jpg"])).to_pylist()
    roles = [r["role"] for r in t]
    assert roles.count("gold") == 2  # gold goes to every annotator
    assert 1 <= roles.count("overlap") <= 10
    for r in t:
        if r["role"] == "overlap":
            primary = [q for q in t if q["file_name"] == r["file_name"] and q["role"] == "primary"]
            assert primary and primary[0]["annotator"] != r["annotator"]


def test_split_ratios_and_video_frames_stay_together():
    names = [f"clip{c}/frame_{f:03d}.jpg" for c in range(20) for f in range(10)] + [
        f"still_{i}.jpg" for i in range(400)
    ]
    has_track = np.array([n.startswith("clip") for n in names])
    split = split_images(names, has_track, Splits(train=0.75, val=0.25, seed=5))
    for c in range(20):
        assert len(set(split[c * 10 : (c + 1) * 10])) == 1
    frac_val = (split[200:] == "val").mean()
    assert 0.15 < frac_val < 0.35
    assert set(split) <= {"train", "val"}


def test_assign_command_writes_task_packages_each_tool_can_read(tmp_path):
    cfg = make_demo_batch(tmp_path, seed=1, n_images=12)
    res = CliRunner().invoke(app, ["assign", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    tasks = tmp_path / "batch" / "tasks"
    table = pq.read_table(tasks / "assignments.parquet").to_pylist()
    for ann in ("ann_a", "ann_b", "ann_c"):
        mine = sorted(r["file_name"] for r in table if r["annotator"] == ann)
        assert mine, ann
        decoded = cvat.decode((tasks / ann / "annotations.xml").read_bytes(), schema=COCO17)
        assert sorted(decoded.dataset.images.file_name) == mine
        assert len(orjson.loads((tasks / ann / "tasks.json").read_bytes())) == len(mine)
        assert b"KeyPointLabels" in (tasks / ann / "label_config.xml").read_bytes()
        project = read_annotations(tasks / ann / "supervisely", schema=COCO17).dataset
        assert sorted(project.images.file_name) == mine
        assert len(project.instances) == 0 and len(project.images) == len(mine)
