"""Match an export's image references to the ingested batch's images, and re-key its instances
(and the items held back at decode) onto the batch's image ids."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from posixpath import basename, splitext

import numpy as np
import pyarrow as pa

from kpdeliver.codecs.label_studio.paths import image_path
from kpdeliver.images import IMAGE_EXTENSIONS
from kpdeliver.model import NONE, Dataset, Instances


def _unique_index(keys: list[str]) -> dict[str, int]:
    """key -> row, for the keys that name exactly one row."""
    index: dict[str, int] = {}
    clash = set()
    for i, key in enumerate(keys):
        if key in index:
            clash.add(key)
        index[key] = i
    return {k: v for k, v in index.items() if k not in clash}


def _name_lookups(
    file_names: list[str],
) -> tuple[dict[str, int], list[tuple[Callable[[str], str], dict[str, int]]]]:
    """Ways to match an export's image path to the batch, most exact first: the path relative to
    the batch's images/ (also as the tail of a longer path: a bucket key, a storage root), the base
    name, the stem (CVAT video exports name frames `frame_000010`, no extension)."""
    relative = _unique_index([n.removeprefix("images/") for n in file_names])
    ways: list[Callable[[str], str]] = [basename, lambda n: splitext(basename(n))[0]]
    return relative, [(way, _unique_index([way(n) for n in file_names])) for way in ways]


def _batch_row(path: str, relative: dict[str, int], lookups) -> int | None:
    parts = path.split("/")
    for start in range(len(parts)):  # the longest tail that is a batch image's relative path
        row = relative.get("/".join(parts[start:]))
        if row is not None:
            return row
    return next((index[way(path)] for way, index in lookups if way(path) in index), None)


_ROBOFLOW = re.compile(r"(?P<stem>.+)_(?P<ext>[A-Za-z0-9]{2,5})\.rf\.[0-9a-fA-F]{8,}(\.[A-Za-z0-9]{2,5})?")


class BatchImages(Mapping):
    """The batch's images by any reference an export makes to one (a relative path, a tail of a
    longer path, a Label Studio server or storage form, a base name or stem; a YOLO label's image
    path without extension): `row(ref)`, and the (width, height) ingest measured, so an export
    that states no size (Label Studio without original_width, YOLO) is sized from the batch."""

    def __init__(self, batch: Dataset) -> None:
        self.names = [str(n) for n in batch.images.file_name.tolist()]
        self._relative, self._lookups = _name_lookups(self.names)
        self._bare = _unique_index([splitext(n.removeprefix("images/"))[0] for n in self.names])
        self._w, self._h = batch.images.width, batch.images.height

    def row(self, ref: str) -> int | None:
        path = image_path(str(ref)).replace("\\", "/")
        if splitext(path)[1].lower() not in IMAGE_EXTENSIONS:  # a YOLO label's image: no extension known
            parts = [p for p in path.split("/") if p]
            for cand in (parts, [p for p in parts if p not in ("images", "labels")]):
                row = next(
                    (
                        self._bare["/".join(cand[i:])]
                        for i in range(len(cand))
                        if "/".join(cand[i:]) in self._bare
                    ),
                    None,
                )
                if row is not None:
                    return row
        row = _batch_row(path, self._relative, self._lookups)
        original = _ROBOFLOW.fullmatch(path.rsplit("/", 1)[-1])
        if row is None and original:  # Roboflow renames `x.jpg` to `x_jpg.rf.<hash>.jpg`
            return self.row(f"{original['stem']}.{original['ext']}")
        return row

    def size(self, row: int) -> tuple[int, int]:
        return int(self._w[row]), int(self._h[row])

    def __getitem__(self, ref) -> tuple[int, int]:
        row = self.row(ref)
        if row is None or min(self.size(row)) <= 0:
            raise KeyError(ref)
        return self.size(row)

    def __contains__(self, ref) -> bool:
        row = self.row(ref)
        return row is not None and min(self.size(row)) > 0

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def rekey_onto_batch(part: Dataset, batch: Dataset, *, source: str) -> Instances:
    """The export's instances with image ids of the batch (-1 where no batch image matches)."""
    relative, lookups = _name_lookups(batch.images.file_name.tolist())
    export_names = dict(zip(part.images.id.tolist(), part.images.file_name.tolist()))
    batch_ids = batch.images.id
    new_ids = []
    for img_id in part.instances.image_id.tolist():
        name = export_names.get(img_id)
        row = None if name is None else _batch_row(name.replace("\\", "/"), relative, lookups)
        new_ids.append(int(batch_ids[row]) if row is not None else NONE)
    ins = part.instances
    extra = dict(ins.extra)
    extra["source_id"] = ins.id.copy()
    extra["source_image_id"] = ins.image_id.copy()
    extra["source"] = np.asarray([source] * len(ins), dtype=object)
    return Instances(
        **{
            **{
                f: getattr(ins, f)
                for f in (
                    "id",
                    "category_id",
                    "bbox",
                    "area",
                    "iscrowd",
                    "annotator",
                    "track_id",
                    "frame",
                    "num_keypoints",
                    "keypoints",
                )
            },
            "image_id": np.asarray(new_ids, dtype=np.int64),
        },
        extra=extra,
    )


def rejected_onto_batch(rejected: pa.Table, part: Dataset, batch: Dataset) -> pa.Table:
    """The items held back at decode with the batch's image ids (null where none matches), so the
    image of a person held back at decode is held back with them."""
    if not rejected.num_rows:
        return rejected
    n, k = rejected.num_rows, part.schema.num_keypoints
    stand_ins = Instances.build(
        id=np.zeros(n),
        image_id=rejected["image_id"].fill_null(NONE).to_numpy(),
        keypoints=np.zeros((n, k, 3)),
        num_kpts=k,
    )
    located = rekey_onto_batch(part.replace(instances=stand_ins), batch, source="").image_id
    column = pa.array(located, pa.int64(), mask=located == NONE)
    return rejected.set_column(rejected.schema.get_field_index("image_id"), "image_id", column)
