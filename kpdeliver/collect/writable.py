"""What `convert` says before writing: an instance on an image the file does not list is held back
with a finding naming it (the rest is converted; a writer needs the image's name and size), and
visibility flags that are not 0, 1 or 2 (a score written as a flag, 0.37) are named with what the
output makes of them, never silently turned into `0 0 0`."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa

from kpdeliver.codecs import REJECTED_SCHEMA, CodecError, Decoded
from kpdeliver.codecs.problems import DecodeLog, ItemProblem, no_rows
from kpdeliver.findings import FINDINGS_SCHEMA, findings_for
from kpdeliver.model import Dataset

FLAG_FORMATS = (
    "yolo",
    "cvat",
    "label-studio",
)  # outputs that hold a flag (or a point) per keypoint, not a number


def _source(ds: Dataset, row: int) -> str:
    ins = ds.instances
    if "source" in ins.extra:
        return str(ins.extra["source"][row])
    return str(ds.images.source[0]) if len(ds.images) else ""


def hold_orphans(decoded: Decoded) -> Decoded:
    """`decoded` with the instances whose image the file does not list moved to `rejected`, one
    `schema.unknown_image` finding each (file, annotation id, image id); CodecError when that is
    every instance (nothing would be converted)."""
    ds = decoded.dataset
    orphan = ds.image_index() < 0
    if not orphan.any():
        return decoded
    ins = ds.instances
    if orphan.all():
        where = f"{_source(ds, 0)}: " if _source(ds, 0) else ""
        raise CodecError(
            f"{where}all {len(ins)} instances are on images the input does not list "
            f"(first: annotation id={int(ins.id[0])}, image id {int(ins.image_id[0])}); "
            "nothing to convert"
        )
    log = DecodeLog("")
    for i in np.flatnonzero(orphan).tolist():
        source, aid, iid = _source(ds, i), int(ins.id[i]), int(ins.image_id[i])
        log.hold(
            ItemProblem(
                "schema.unknown_image",
                source,
                f"{source}: annotation id={aid}, field 'image_id': image id {iid} is not "
                "an image the file lists (no name or size to write it with); held back, the rest converted",
                field="image_id",
                image_id=iid,
                annotation_id=aid,
                annotator=str(ins.annotator[i] or ""),
                raw=orjson.dumps(
                    {"id": aid, "image_id": iid, "keypoints": ins.keypoints[i].reshape(-1).tolist()},
                    option=orjson.OPT_SERIALIZE_NUMPY,
                ).decode(),
            )
        )
    kept = Decoded(ds.subset_instances(~orphan), decoded.findings, decoded.rejected)
    kept.merge_findings(log.findings_table())
    kept.rejected = pa.concat_tables([decoded.rejected.cast(REJECTED_SCHEMA), log.rejected_table()])
    return kept


def odd_flags(dataset: Dataset, to: str) -> pa.Table:
    """One `visibility.invalid_flag` warning per instance holding flags outside {0, 1, 2}, naming
    the keypoints, their values and what the `to` output writes for each."""
    ins, names = dataset.instances, dataset.schema.keypoints
    v = ins.v
    odd = ~np.isin(v, (0, 1, 2)) & np.isfinite(v)
    rows = np.flatnonzero(odd.any(axis=1))
    if not len(rows):
        return no_rows(FINDINGS_SCHEMA)  # no pa.array(): `convert` on a clean file never imports pandas
    written = np.clip(np.rint(np.nan_to_num(v)), 0, 2).astype(np.int64)
    file_of = dict(zip(dataset.images.id.tolist(), dataset.images.file_name.tolist()))
    messages, first = [], []
    for r in rows.tolist():
        cols = np.flatnonzero(odd[r]).tolist()
        first.append(names[cols[0]])
        if to in FLAG_FORMATS:
            what = ", ".join(f"{names[j]}={v[r, j]:g} -> v={written[r, j]}" for j in cols)
            tail = f"not 0, 1 or 2; {to} holds flags, written rounded (v=0: the point is dropped)"
        else:
            what, tail = (
                ", ".join(f"{names[j]}={v[r, j]:g}" for j in cols),
                f"not 0, 1 or 2; kept as read in {to}",
            )
        messages.append(
            f"{_source(dataset, r)}: annotation id={int(ins.id[r])}, visibility flags {what}: {tail}"
        )
    return findings_for(
        "visibility.invalid_flag",
        severity="warning",
        message=messages,
        annotation_id=ins.id[rows],
        image_id=ins.image_id[rows],
        file_name=[file_of.get(int(i)) for i in ins.image_id[rows]],
        keypoint=first,
        value=v[rows, np.argmax(odd[rows], axis=1)],
        source=[_source(dataset, r) for r in rows.tolist()],
        n=len(rows),
    )
