"""What every deep-QA check reads: the dataset's instances as flat arrays, and how to turn instance
rows into located findings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kpdeliver.findings import empty_findings, findings_for
from kpdeliver.model import Dataset
from kpdeliver.qa.oks import scale_sq
from kpdeliver.schema import KeypointSchema


@dataclass(frozen=True)
class Context:
    schema: KeypointSchema
    kps: np.ndarray
    s2: np.ndarray
    box: np.ndarray  # [n, 4] the instance's box, else the tight box around its labeled points; NaN if neither
    ann: np.ndarray  # annotator name per instance
    annotator_names: tuple[str, ...]
    ann_code: np.ndarray
    keys: np.ndarray  # file name per instance (image id when the image is unknown)
    image_id: np.ndarray
    file_name: np.ndarray
    ann_id: np.ndarray
    source: np.ndarray | None
    track_id: np.ndarray
    frame: np.ndarray
    image_key_ids: dict  # file name -> (image id, file name) for locating findings without an instance

    @classmethod
    def of(cls, dataset: Dataset) -> Context:
        ins = dataset.instances
        row = dataset.image_index()
        names_col = dataset.images.file_name
        file_name = np.array([names_col[r] if r >= 0 else None for r in row], dtype=object)
        keys = np.where(file_name == None, np.char.add("#image ", ins.image_id.astype(str)), file_name)  # noqa: E711
        ann = np.array([a if a else "(unnamed)" for a in ins.annotator], dtype=object)
        names, code = np.unique(ann.astype(str), return_inverse=True)
        empty = len(ins) == 0  # an empty Instances may carry K = 0 columns
        kps = np.zeros((0, dataset.schema.num_keypoints, 3)) if empty else ins.keypoints
        return cls(
            schema=dataset.schema,
            kps=kps,
            s2=np.zeros(0) if empty else scale_sq(ins),
            box=np.where(np.isnan(ins.bbox), ins.bbox_from_keypoints(), ins.bbox)
            if not empty
            else np.zeros((0, 4)),
            ann=ann,
            annotator_names=tuple(names.tolist()),
            ann_code=code.astype(np.int64),
            keys=keys.astype(object),
            image_id=ins.image_id,
            file_name=file_name,
            ann_id=ins.id,
            source=ins.extra.get("source"),
            track_id=ins.track_id,
            frame=ins.frame,
            image_key_ids={f: i for i, f in zip(dataset.images.id.tolist(), names_col.tolist())},
        )

    @property
    def n(self) -> int:
        return len(self.kps)

    @property
    def n_annotators(self) -> int:
        return len(self.annotator_names)

    @property
    def in_video(self) -> np.ndarray:
        """[n] bool: the instance is a frame of a video track."""
        return (self.track_id >= 0) & (self.frame >= 0)

    def table(
        self, check: str, rows: np.ndarray, *, message, keypoint=None, value=None, severity=None
    ) -> pa.Table:
        if len(rows) == 0:
            return empty_findings()
        return findings_for(
            check,
            message=list(message),
            image_id=self.image_id[rows],
            file_name=self.file_name[rows],
            annotation_id=self.ann_id[rows],
            annotator=self.ann[rows],
            keypoint=keypoint,
            value=value,
            source=None if self.source is None else self.source[rows],
            severity=severity,
            n=len(rows),
        )


@dataclass(frozen=True)
class DriftSamples:
    """What a reference check hands to the drift check: per compared instance, the reference it was
    compared with, and how far it was from it."""

    rows: np.ndarray  # [m] instance rows
    reference: np.ndarray  # [m] annotator code of the reference; Context.n_annotators means gold
    offsets: (
        np.ndarray
    )  # [m, K, 2] (own point - reference point) / reference scale; NaN where not both labeled
    oks_loss: np.ndarray  # [m] 1 - OKS against the reference

    @classmethod
    def none(cls, n_keypoints: int) -> DriftSamples:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, n_keypoints, 2)), np.zeros(0))
