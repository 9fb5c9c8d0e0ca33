"""What `kpdeliver inspect PATH` reports: format, schema, counts, visibility histogram, oddities.

A folder is reported file by file (a YOLO folder as one), since one folder often holds files
of different schemas. The oddities are descriptive counts for a person deciding what to do
with a file; the delivery's rule checks live in `expectations/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kpdeliver.codecs import CodecError, Decoded
from kpdeliver.schema import BUILTIN_SCHEMAS, KeypointSchema, SchemaError, unpaired_side_names


@dataclass
class Report:
    path: str
    format: str
    schema: str = ""
    num_keypoints: int = 0
    images: int = 0
    instances: int = 0
    labeled_points: int = 0
    visibility: dict[str, int] = field(default_factory=dict)
    oddities: list[str] = field(default_factory=list)
    error: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def match_schema(schema: KeypointSchema) -> str:
    """Which built-in a decoded schema is: by names when it has them, else only a hint by count."""
    from kpdeliver.names import map_keypoint_names

    unnamed = all(n == f"kp{i}" for i, n in enumerate(schema.keypoints))
    if schema.name in BUILTIN_SCHEMAS and BUILTIN_SCHEMAS[schema.name] is schema:
        return schema.name
    if not unnamed:
        for b in BUILTIN_SCHEMAS.values():
            try:
                map_keypoint_names(schema.keypoints, b)
                return f"{b.name} (by keypoint names)"
            except SchemaError:
                continue
        return f"custom {schema.name!r} ({schema.num_keypoints} named keypoints)"
    same_k = [b.name for b in BUILTIN_SCHEMAS.values() if b.num_keypoints == schema.num_keypoints]
    if same_k:
        return f"unnamed {schema.num_keypoints} keypoints; same count as {', '.join(same_k)} (count only, names absent)"
    return f"unnamed {schema.num_keypoints} keypoints (custom)"


def visibility_histogram(v: np.ndarray) -> dict[str, int]:
    vals, counts = np.unique(v.reshape(-1), return_counts=True)
    return {(str(int(x)) if float(x).is_integer() else repr(float(x))): int(c) for x, c in zip(vals, counts)}


def oddities(decoded: Decoded, *, fmt: str = "coco") -> list[str]:
    """Plain-words counts of what looks odd, plus the decoder's own findings."""
    ds = decoded.dataset
    ins, im = ds.instances, ds.images
    out = []
    v = ins.v
    xy = ins.xy
    n_frac = int((~np.isin(v, (0, 1, 2))).sum())
    if n_frac:
        out.append(f"{n_frac} points with a flag outside {{0, 1, 2}}")
    v0_coords = int(((v == 0) & np.any(xy != 0, axis=-1)).sum())
    if v0_coords:
        out.append(f"{v0_coords} v=0 points with non-zero coordinates")
    nonfinite = int((~np.isfinite(ins.keypoints)).any(axis=(1, 2)).sum()) if len(ins) else 0
    if nonfinite:
        out.append(f"{nonfinite} instances with NaN/infinite values")
    row = ds.image_index()
    if len(ins):
        unknown = int((row < 0).sum())
        if unknown:
            out.append(f"{unknown} instances on images the file does not list")
        known = row >= 0  # indexed only where known: a file may list no image at all
        w, h = np.zeros((2, len(ins), 1), np.int64)
        w[known, 0], h[known, 0] = im.width[row[known]], im.height[row[known]]
        sized = (w > 0) & (h > 0)
        out_img = (
            (v == 2) & sized & ((xy[..., 0] < 0) | (xy[..., 1] < 0) | (xy[..., 0] > w) | (xy[..., 1] > h))
        )
        if out_img.any():
            out.append(f"{int(out_img.sum())} visible (v=2) points outside their image")
        declared = ins.num_keypoints >= 0
        mismatch = int((declared & (ins.num_keypoints != (v > 0).sum(axis=1))).sum())
        if mismatch:
            out.append(f"{mismatch} instances whose num_keypoints differs from the count of v>0 points")
        if fmt == "coco" and (~declared).all():
            out.append("num_keypoints not declared")
    no_size = int(((im.width <= 0) | (im.height <= 0)).sum())
    if no_size:
        out.append(f"{no_size} images with unknown width/height")
    if ds.schema.num_keypoints and not len(ds.schema.flip_pairs):
        out.append("schema has no left/right pairs (flip_idx is the identity)")
    unpaired = unpaired_side_names(ds.schema)
    if unpaired:
        out.append(
            f"left/right names in no flip pair (a horizontal flip leaves them on the wrong side): {unpaired}"
        )
    if decoded.rejected.num_rows:
        out.append(f"{decoded.rejected.num_rows} items held back at decode")
    out += [
        f"[{c}] {m}"
        for c, m in zip(decoded.findings["check"].to_pylist(), decoded.findings["message"].to_pylist())
    ]
    return out


def report(decoded: Decoded, *, path: str, fmt: str) -> Report:
    ds = decoded.dataset
    v = ds.instances.v
    return Report(
        path=path,
        format=fmt,
        schema=match_schema(ds.schema),
        num_keypoints=ds.schema.num_keypoints,
        images=len(ds.images),
        instances=len(ds.instances),
        labeled_points=int((v > 0).sum()),
        visibility=visibility_histogram(v),
        oddities=oddities(decoded, fmt=fmt),
    )


def _not_regular(p: Path) -> str:
    from kpdeliver.codecs import CodecError
    from kpdeliver.collect.local import read_input

    try:
        read_input(p)
    except CodecError as e:
        return str(e)
    return "not a regular file"


def inspect_path(path: str | Path, *, schema: KeypointSchema | None = None) -> list[Report]:
    """One report per annotation file (a YOLO folder is one report); unreadable files carry `error`."""
    from kpdeliver.collect import files as formats
    from kpdeliver.collect.projects import folder_codec

    p = Path(path)
    formats.detect_format(p)  # an unknown format stops here, with its sentence
    if p.is_file() or (p.is_dir() and folder_codec(p) is not None):  # a YOLO folder, a Supervisely project
        targets = [p]
    elif p.exists() and not p.is_dir():  # a named pipe, a device: said, never opened
        return [Report(path=str(p), format="unknown", error=_not_regular(p))]
    else:
        targets = formats.annotation_files(p)
        if not targets:
            return [
                Report(
                    path=str(p), format="unknown", error="no annotation files (.json, .xml, .zip, data.yaml)"
                )
            ]
    out = []
    for t in targets:
        t_fmt = formats.detect_format(t)
        out += _inspect_file(t, t_fmt, schema=schema)
    return out


def _inspect_file(t: Path, fmt: str, *, schema: KeypointSchema | None) -> list[Report]:
    """One report, or one per keypoint category of a COCO file that holds several (each its own
    schema; the report's path names the category as `file#category`)."""
    from kpdeliver.codecs.coco.categories import SeveralCategories
    from kpdeliver.collect import files as formats

    read_fmt = fmt if fmt != "unknown" else None
    try:
        return [report(formats.read_annotations(t, schema=schema, fmt=read_fmt), path=str(t), fmt=fmt)]
    except SeveralCategories as several:
        out = []
        for name in several.categories:
            try:
                decoded = formats.read_annotations(t, schema=schema, fmt=read_fmt, category=name)
            except (CodecError, SchemaError, OSError) as e:
                out.append(Report(path=f"{t}#{name}", format=fmt, error=str(e)))
                continue
            out.append(report(decoded, path=f"{t}#{name}", fmt=fmt))
        return out
    except (CodecError, SchemaError, OSError) as e:
        return [Report(path=str(t), format=fmt, error=str(e))]
