"""`kpdeliver validate` on a single video export (PoseTrack-style COCO) runs the temporal checks."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.codecs import coco
from kpdeliver.synth import video_dataset

pytestmark = pytest.mark.slow  # Great Expectations


def test_a_jump_in_one_frame_is_located_by_validate(tmp_path):
    ds = video_dataset(1, tracks_per_video=(1, 1), n_frames=30, seed=2)
    ins = ds.instances
    visible = np.flatnonzero(
        (ins.v[:, 9] == 2) & (ins.frame > ins.frame.min() + 5) & (ins.frame < ins.frame.max() - 5)
    )
    row = int(visible[len(visible) // 2])
    scale = np.sqrt(ins.bbox[row, 2] * ins.bbox[row, 3])
    ins.keypoints[row, 9, 0] += 0.35 * scale  # left_wrist jumps for one frame
    ins.keypoints[row, 9, 0] = min(ins.keypoints[row, 9, 0], ds.images.width[0] - 1)
    path = tmp_path / "video.json"
    path.write_bytes(coco.encode(ds))
    res = CliRunner().invoke(
        app, ["validate", str(path), "--schema", "coco17", "--out", str(tmp_path / "out")]
    )
    assert res.exit_code in (0, 1), res.output
    f = pq.read_table(tmp_path / "out/findings.parquet").to_pylist()
    jitter = [r for r in f if r["check"] == "qa.temporal_jitter"]
    assert [(r["annotation_id"], r["keypoint"]) for r in jitter] == [(int(ins.id[row]), "left_wrist")]
