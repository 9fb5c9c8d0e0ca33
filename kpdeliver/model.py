"""The canonical columnar model every codec decodes into and encodes from.

Two tables of numpy columns: images (one row per image) and instances (one row per annotated
object, keypoints as one `[n, K, 3]` float64 array). No Python object per keypoint: every
hot path works on whole columns.

Conventions:
- keypoints[..., 2] holds the visibility flag exactly as decoded (float, so a fractional flag
  from the wild survives until validation reports it).
- integer "absent" markers: track_id = -1, frame = -1, num_keypoints = -1 (field missing).
- bbox is COCO `[x, y, w, h]` in pixels; NaN where the source had none.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pyarrow as pa

from kpdeliver.schema import KeypointSchema

NONE = -1  # integer marker for "absent" in id-like columns


def _col(values, dtype) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)
    return arr.reshape(-1) if arr.ndim != 1 else arr


def _str_col(values) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr


@dataclass
class Images:
    id: np.ndarray  # int64
    file_name: np.ndarray  # object (str)
    width: np.ndarray  # int64; 0 when unknown
    height: np.ndarray  # int64; 0 when unknown
    sha256: np.ndarray  # object (str or None)
    source: np.ndarray  # object (str): where the image came from (key or path)
    # int64 EXIF orientation (1 = as stored); width/height are the displayed sides
    orientation: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.id)
        if self.orientation is None:
            self.orientation = np.ones(n, np.int64)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(f"Images.{f.name} has {len(getattr(self, f.name))} rows, expected {n}")

    @classmethod
    def build(
        cls, *, id, file_name, width=None, height=None, sha256=None, source=None, orientation=None
    ) -> Images:
        n = len(id)
        return cls(
            id=_col(id, np.int64),
            file_name=_str_col(file_name),
            width=_col(width if width is not None else np.zeros(n), np.int64),
            height=_col(height if height is not None else np.zeros(n), np.int64),
            sha256=_str_col(sha256 if sha256 is not None else [None] * n),
            source=_str_col(source if source is not None else [""] * n),
            orientation=_col(orientation if orientation is not None else np.ones(n), np.int64),
        )

    @classmethod
    def empty(cls) -> Images:
        return cls.build(id=[], file_name=[])

    def __len__(self) -> int:
        return len(self.id)

    def take(self, idx) -> Images:
        return Images(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def to_arrow(self) -> pa.Table:
        return pa.table(
            {
                "image_id": self.id,
                "file_name": pa.array(self.file_name.tolist(), pa.string()),
                "width": self.width,
                "height": self.height,
                "sha256": pa.array(self.sha256.tolist(), pa.string()),
                "source": pa.array(self.source.tolist(), pa.string()),
            }
        )


@dataclass
class Instances:
    id: np.ndarray  # int64
    image_id: np.ndarray  # int64
    category_id: np.ndarray  # int64
    bbox: np.ndarray  # float64 [n, 4] (x, y, w, h); NaN when absent
    area: np.ndarray  # float64 [n]; NaN when absent
    iscrowd: np.ndarray  # int8
    annotator: np.ndarray  # object (str)
    track_id: np.ndarray  # int64, -1 = none
    frame: np.ndarray  # int64, -1 = none
    num_keypoints: np.ndarray  # int64 as declared by the source, -1 = not declared
    keypoints: np.ndarray  # float64 [n, K, 3]
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # audit columns, row-aligned

    def __post_init__(self) -> None:
        n = len(self.id)
        for f in fields(self):
            if f.name == "extra":
                continue
            if len(getattr(self, f.name)) != n:
                raise ValueError(f"Instances.{f.name} has {len(getattr(self, f.name))} rows, expected {n}")
        if self.keypoints.ndim != 3 or self.keypoints.shape[2] != 3:
            raise ValueError(f"Instances.keypoints must be [n, K, 3], got {self.keypoints.shape}")
        for k, v in self.extra.items():
            if len(v) != n:
                raise ValueError(f"Instances.extra[{k!r}] has {len(v)} rows, expected {n}")

    @classmethod
    def build(
        cls,
        *,
        id,
        image_id,
        keypoints,
        category_id=None,
        bbox=None,
        area=None,
        iscrowd=None,
        annotator=None,
        track_id=None,
        frame=None,
        num_keypoints=None,
        extra: Mapping[str, np.ndarray] | None = None,
        num_kpts: int | None = None,
    ) -> Instances:
        n = len(id)
        kps = np.asarray(keypoints, dtype=np.float64)
        if kps.size == 0:
            kps = kps.reshape(
                n, num_kpts if num_kpts is not None else (kps.shape[1] if kps.ndim == 3 else 0), 3
            )
        bb = np.full((n, 4), np.nan) if bbox is None else np.asarray(bbox, dtype=np.float64).reshape(n, 4)
        return cls(
            id=_col(id, np.int64),
            image_id=_col(image_id, np.int64),
            category_id=_col(np.ones(n) if category_id is None else category_id, np.int64),
            bbox=bb,
            area=_col(np.full(n, np.nan) if area is None else area, np.float64),
            iscrowd=_col(np.zeros(n) if iscrowd is None else iscrowd, np.int8),
            annotator=_str_col([""] * n if annotator is None else annotator),
            track_id=_col(np.full(n, NONE) if track_id is None else track_id, np.int64),
            frame=_col(np.full(n, NONE) if frame is None else frame, np.int64),
            num_keypoints=_col(np.full(n, NONE) if num_keypoints is None else num_keypoints, np.int64),
            keypoints=kps,
            extra=dict(extra or {}),
        )

    @classmethod
    def empty(cls, num_kpts: int) -> Instances:
        return cls.build(id=[], image_id=[], keypoints=np.zeros((0, num_kpts, 3)), num_kpts=num_kpts)

    def __len__(self) -> int:
        return len(self.id)

    @property
    def xy(self) -> np.ndarray:
        return self.keypoints[..., :2]

    @property
    def v(self) -> np.ndarray:
        return self.keypoints[..., 2]

    def take(self, idx) -> Instances:
        cols = {f.name: getattr(self, f.name)[idx] for f in fields(self) if f.name != "extra"}
        return Instances(**cols, extra={k: v[idx] for k, v in self.extra.items()})

    def bbox_from_keypoints(self) -> np.ndarray:
        """Tight [x, y, w, h] around the labeled (v > 0) points; NaN for instances with none."""
        labeled = self.v > 0
        x = np.where(labeled, self.keypoints[..., 0], np.nan)
        y = np.where(labeled, self.keypoints[..., 1], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, as wanted
            x0, x1 = np.nanmin(x, axis=1), np.nanmax(x, axis=1)
            y0, y1 = np.nanmin(y, axis=1), np.nanmax(y, axis=1)
        return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)

    def to_arrow(self) -> pa.Table:
        n, k = len(self), self.keypoints.shape[1]
        kp_flat = pa.array(self.keypoints.reshape(-1), pa.float64())
        keypoints = (
            pa.FixedSizeListArray.from_arrays(pa.FixedSizeListArray.from_arrays(kp_flat, 3), k)
            if n
            else pa.array([], pa.list_(pa.list_(pa.float64(), 3), k))
        )
        cols = {
            "annotation_id": self.id,
            "image_id": self.image_id,
            "category_id": self.category_id,
            "annotator": pa.array(self.annotator.tolist(), pa.string()),
            "track_id": pa.array(self.track_id, mask=self.track_id == NONE),
            "frame": pa.array(self.frame, mask=self.frame == NONE),
            "bbox": pa.FixedSizeListArray.from_arrays(pa.array(self.bbox.reshape(-1)), 4)
            if n
            else pa.array([], pa.list_(pa.float64(), 4)),
            "area": self.area,
            "iscrowd": self.iscrowd,
            "num_keypoints": (self.v > 0).sum(axis=1).astype(np.int64),
            "keypoints": keypoints,
        }
        return pa.table(cols)


@dataclass
class Category:
    id: int
    name: str
    supercategory: str = ""


@dataclass
class Dataset:
    """Images + instances + the schema their keypoints follow."""

    schema: KeypointSchema
    images: Images
    instances: Instances
    categories: tuple[Category, ...] = ()

    def __post_init__(self) -> None:
        k = self.instances.keypoints.shape[1]
        if len(self.instances) and k != self.schema.num_keypoints:
            raise ValueError(
                f"instances carry {k} keypoints but schema {self.schema.name!r} has {self.schema.num_keypoints}"
            )
        if not self.categories:
            self.categories = (Category(1, self.schema.category),)

    @classmethod
    def empty(cls, schema: KeypointSchema) -> Dataset:
        return cls(schema, Images.empty(), Instances.empty(schema.num_keypoints))

    def replace(self, **changes) -> Dataset:
        return replace(self, **changes)

    def image_index(self) -> np.ndarray:
        """For every instance, the row of its image in `images` (-1 when the image is unknown)."""
        order = np.argsort(self.images.id, kind="stable")
        sorted_ids = self.images.id[order]
        pos = np.searchsorted(sorted_ids, self.instances.image_id)
        pos_c = np.clip(pos, 0, max(len(sorted_ids) - 1, 0))
        found = (
            (pos < len(sorted_ids)) & (sorted_ids[pos_c] == self.instances.image_id)
            if len(sorted_ids)
            else np.zeros(len(pos), bool)
        )
        return np.where(found, order[pos_c] if len(order) else -1, -1)

    def subset_instances(self, mask: np.ndarray) -> Dataset:
        return self.replace(instances=self.instances.take(np.flatnonzero(mask)))

    def subset_images(self, mask: np.ndarray) -> Dataset:
        """Keep the images where mask is True, and only the instances on them."""
        images = self.images.take(np.flatnonzero(mask))
        keep = np.isin(self.instances.image_id, images.id)
        return self.replace(images=images, instances=self.instances.take(np.flatnonzero(keep)))


def bbox_or_from_keypoints(instances: Instances) -> np.ndarray:
    """[n, 4] boxes as held, the tight box around the labeled points where none is held, and
    zeros where there is neither: what every writer puts in a file that needs a box."""
    held = instances.bbox
    missing = np.isnan(held)
    # the tight boxes only when a box is missing (most files hold every box)
    bbox = np.where(missing, instances.bbox_from_keypoints(), held) if missing.any() else held
    return np.nan_to_num(bbox, nan=0.0)


def concat_instances(parts: list[Instances], num_kpts: int) -> Instances:
    parts = [p for p in parts if len(p)]
    if not parts:
        return Instances.empty(num_kpts)
    extra_keys = sorted(set().union(*(p.extra.keys() for p in parts)))
    cols = {
        f.name: np.concatenate([getattr(p, f.name) for p in parts])
        for f in fields(Instances)
        if f.name != "extra"
    }
    extra = {}
    for key in extra_keys:
        chunks = []
        for p in parts:
            if key in p.extra:
                chunks.append(p.extra[key])
            else:
                proto = next(q.extra[key] for q in parts if key in q.extra)
                filler = np.full(
                    (len(p), *proto.shape[1:]), np.nan if proto.dtype.kind == "f" else None, dtype=proto.dtype
                )
                chunks.append(filler)
        extra[key] = np.concatenate(chunks)
    return Instances(**cols, extra=extra)


def concat_images(parts: list[Images]) -> Images:
    parts = [p for p in parts if len(p)]
    if not parts:
        return Images.empty()
    return Images(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Images)})


def parquet_bytes(table: pa.Table) -> bytes:
    """A table as zstd-compressed Parquet bytes (what stores are handed)."""
    import pyarrow.parquet as pq  # 45 ms with the file systems it brings: not for `convert`

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
