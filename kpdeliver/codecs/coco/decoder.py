"""COCO Keypoints JSON -> canonical model.

Decoding is faithful: coordinates and visibility flags are kept exactly as written (a float
flag, a `(-1, -1, 0)` unlabeled point) so validation can report them. Per-item problems that
make an instance impossible to model (wrong keypoint count, non-numeric values, missing
keypoints) hold that item back as `rejected` with a finding naming file, item and field;
every other item is still decoded.
"""

from __future__ import annotations

import json
from operator import attrgetter

import numpy as np

from kpdeliver.codecs import CodecError, Decoded, DecodeLog, ItemProblem
from kpdeliver.codecs.coco import typed
from kpdeliver.codecs.coco.categories import choose_category, of_category
from kpdeliver.codecs.coco.columns import (
    as_int,
    float_col,
    int_col,
    keypoint_array,
    kp_length,
    numeric_block,
    uniform_block,
    valid_numbers,
)
from kpdeliver.codecs.coco.document import coco_doc, note_quirks, read_categories
from kpdeliver.codecs.coco.metadata import (
    name_order,
    schema_from_coco_category,
    schema_from_file,
)
from kpdeliver.codecs.json_doc import load_json, raw_json
from kpdeliver.collector import gc_paused
from kpdeliver.findings import findings_for
from kpdeliver.model import NONE, Category, Dataset, Images, Instances
from kpdeliver.schema import KeypointSchema


def decode(
    data: bytes,
    *,
    schema: KeypointSchema | None = None,
    source: str = "",
    annotator: str = "",
    category: str | None = None,
) -> Decoded:
    """Decode a COCO keypoints file. With no schema, the file's own category defines one.

    A file with several keypoint categories (a mouse with 17 points, a fly with 13) holds one
    schema per category: `category` names the one to read; without it the file is refused with
    `SeveralCategories`, which lists them (unless `schema` fits exactly one of them)."""
    with gc_paused():
        try:
            if category is None:
                try:
                    return decode_typed(data, schema=schema, source=source, annotator=annotator)
                except typed.NotTypical:
                    pass  # read the generic way: every finding as always
            return decode_generic(data, schema=schema, source=source, annotator=annotator, category=category)
        except OverflowError as e:
            raise CodecError(f"{source}: {e}; ids and integer fields must fit 64-bit integers") from None


def decode_generic(
    data: bytes, *, schema: KeypointSchema | None, source: str, annotator: str, category: str | None
) -> Decoded:
    log = DecodeLog(source)
    doc = coco_doc(load_json(data, source, log), source)
    anns = doc.get("annotations") or []
    raw_images = doc.get("images") or []
    cats = read_categories(doc.get("categories") or [], log)
    chosen = choose_category(cats, anns, schema=schema, category=category, source=source)
    if chosen is not None:
        anns = of_category(anns, cats, chosen, log, annotator=annotator)
        cats = chosen

    uniform = uniform_block(anns)
    if uniform is not None:
        lengths = np.full(len(anns), uniform.shape[1] // 3, np.int64)
    else:
        lengths = np.fromiter(
            (kp_length(a.get("keypoints")) if isinstance(a, dict) else -1 for a in anns), np.int64, len(anns)
        )
    note_quirks(cats, anns, lengths, log)
    if schema is None:
        schema = (
            schema_from_coco_category(chosen[0], len(chosen[0]["keypoints"]))
            if chosen
            else schema_from_file(cats, lengths, source)
        )
    k = schema.num_keypoints
    order = name_order(cats, schema, source)

    img_of: dict[int, str] = {}
    images = _decode_images(raw_images, source, img_of, log)

    good, kps = _kept_keypoints(anns, uniform, lengths, schema, img_of=img_of, log=log, annotator=annotator)
    if order is not None:
        kps = kps[:, order, :]
    instances = _instances_of_dicts(good, kps, k, annotator)
    _fill_frames_from_images(instances, raw_images)
    categories = tuple(
        Category(as_int(c.get("id"), 1), str(c.get("name", "")), str(c.get("supercategory", "")))
        for c in cats
    )
    dataset = Dataset(schema, images, instances, categories)
    return Decoded.logged(dataset, log)


def _kept_keypoints(
    anns: list,
    uniform: np.ndarray | None,
    lengths: np.ndarray,
    schema: KeypointSchema,
    *,
    img_of: dict[int, str],
    log: DecodeLog,
    annotator: str,
) -> tuple[list[dict], np.ndarray]:
    """The annotations that can be modelled and their keypoints [n, K, 3] in the file's point order
    (one numpy block when all are numeric); the others are held back in `log` (`_hold_misshapen`)."""
    k = schema.num_keypoints
    shaped = np.flatnonzero(lengths == k)
    block: np.ndarray | None
    if uniform is not None and len(shaped) == len(anns):
        block = uniform.astype(np.float64, copy=False).reshape(len(anns), k, 3)
    else:
        block = numeric_block([anns[i]["keypoints"] for i in shaped.tolist()], k) if len(shaped) else None
    # with an all-numeric block only the wrongly shaped items need a look, one by one
    suspects = np.flatnonzero(lengths != k).tolist() if block is not None else range(len(anns))
    keep_rows = _hold_misshapen(
        anns,
        suspects,
        lengths,
        schema,
        numeric=block is not None,
        img_of=img_of,
        log=log,
        annotator=annotator,
    )
    if block is not None:
        keep_rows = shaped.tolist()
    good = [anns[i] for i in keep_rows]
    kps = block if block is not None else keypoint_array([a["keypoints"] for a in good], k)
    return good, kps


def _hold_misshapen(
    anns: list,
    suspects,
    lengths: np.ndarray,
    schema: KeypointSchema,
    *,
    numeric: bool,
    img_of: dict[int, str],
    log: DecodeLog,
    annotator: str,
) -> list[int]:
    """Hold back each suspect annotation that cannot be modelled (not an object, keypoints missing,
    of another count or, unless the block is `numeric`, not numbers); the rows of the others."""
    source, k = log.source, schema.num_keypoints
    keep_rows: list[int] = []
    for i in suspects:
        a = anns[i]
        reason = None
        if not isinstance(a, dict):
            reason = ("schema.bad_type", "annotations", f"annotation #{i} is not an object")
        elif lengths[i] < 0:
            what = "missing" if a.get("keypoints") is None else "not a list of [x, y, v] triplets"
            reason = (
                "schema.missing_field" if a.get("keypoints") is None else "schema.bad_type",
                "keypoints",
                f"keypoints {what}",
            )
        elif lengths[i] != k:
            reason = (
                "schema.keypoint_count",
                "keypoints",
                f"{lengths[i]} keypoints, schema {schema.name!r} has {k}",
            )
        elif not numeric and not valid_numbers(a["keypoints"]):
            reason = ("schema.bad_type", "keypoints", "keypoints hold non-numeric values")
        if reason is None:
            keep_rows.append(i)
            continue
        check, fld, why = reason
        ann_id = as_int(a.get("id")) if isinstance(a, dict) else NONE
        img_id = as_int(a.get("image_id")) if isinstance(a, dict) else NONE
        log.hold(
            ItemProblem(
                check,
                source,
                f"{source}: annotation id={ann_id} (#{i}), field '{fld}': {why}",
                field=fld,
                image_id=img_id,
                annotation_id=ann_id,
                file_name=img_of.get(img_id),
                annotator=annotator,
                value=float(lengths[i]) if check == "schema.keypoint_count" else None,
                raw=raw_json(a) if isinstance(a, dict) else json.dumps(a),
            )
        )
    return keep_rows


def _instances_of_dicts(good: list[dict], kps: np.ndarray, k: int, annotator: str) -> Instances:
    def col(key: str) -> list:
        return [a.get(key) for a in good]

    return Instances.build(
        id=_ints("annotations", "id", col("id")),
        image_id=_ints("annotations", "image_id", col("image_id")),
        category_id=_ints("annotations", "category_id", col("category_id"), 1),
        bbox=float_col(col("bbox"), 4),
        area=float_col(col("area")),
        iscrowd=_ints("annotations", "iscrowd", col("iscrowd"), 0),
        annotator=[str(a.get("annotator") or annotator) for a in good],
        track_id=_ints("annotations", "track_id", col("track_id")),
        frame=_ints("annotations", "frame_id", [a.get("frame_id", a.get("frame")) for a in good]),
        num_keypoints=_ints("annotations", "num_keypoints", col("num_keypoints")),
        keypoints=kps,
        num_kpts=k,
        # a file kpdeliver renumbered (an id 0) keeps each annotation's former id as `source_id`
        extra={"source_id": _ints("annotations", "source_id", col("source_id"))}
        if good and "source_id" in good[0]
        else None,
    )


def decode_typed(data: bytes, *, schema: KeypointSchema | None, source: str, annotator: str) -> Decoded:
    """A well-formed file (see `typed`): the same dataset and findings as `decode_generic`, built from
    typed structs and one numpy parse of the keypoints."""
    fields: dict[str, list] = {}
    doc = typed.read(data, fields)
    anns, raw_images = doc.annotations, doc.images
    cats = _typed_categories(doc, schema, source)
    file_k = typed.keypoint_count(anns)
    lengths = np.full(len(anns), file_k, np.int64)
    if schema is not None and schema.num_keypoints != file_k:
        raise typed.NotTypical("keypoint count differs from the schema")
    log = DecodeLog(source)
    note_quirks(cats, [], lengths, log)
    if schema is None:
        schema = schema_from_file(cats, lengths, source)
    k = schema.num_keypoints
    order = name_order(cats, schema, source)
    columns = _struct_columns(anns, annotator, fields)
    del fields
    images = Images.build(
        id=typed.int_column([im.id for im in raw_images]),
        file_name=["" if im.file_name is typed.UNSET else im.file_name for im in raw_images],
        width=typed.int_column([im.width for im in raw_images], 0),
        height=typed.int_column([im.height for im in raw_images], 0),
        source=[source] * len(raw_images),
    )
    frames = {im.id: im.frame_id for im in raw_images if im.frame_id is not typed.UNSET}
    del doc, raw_images
    kps = typed.keypoint_block(anns, k)  # consumes the structs (a third of a large file's peak)
    if order is not None:
        kps = kps[:, order, :]
    instances = Instances.build(**columns, keypoints=kps, num_kpts=k)
    missing = instances.frame == NONE
    if frames and missing.any():
        instances.frame[missing] = [frames.get(i, NONE) for i in instances.image_id[missing].tolist()]
    categories = tuple(
        Category(as_int(c.get("id"), 1), str(c.get("name", "")), str(c.get("supercategory", "")))
        for c in cats
    )
    return Decoded.logged(Dataset(schema, images, instances, categories), log)


def _typed_categories(doc, schema: KeypointSchema | None, source: str) -> list[dict]:
    """The file's category objects; NotTypical unless they are well formed and the annotations
    use one keypoint category."""
    if doc.categories is typed.UNSET or doc.categories is None:
        cats = []
    elif isinstance(doc.categories, list):
        cats = [c for c in doc.categories if isinstance(c, dict)]
        if any(
            c.get(k) is not None and not isinstance(c[k], list)
            for c in cats
            for k in ("keypoints", "skeleton")
        ):
            raise typed.NotTypical("a category's keypoints or skeleton is not a list")
    else:
        raise typed.NotTypical("categories not a list")
    try:
        used = [
            {"category_id": None if c is typed.UNSET else c} for c in {a.category_id for a in doc.annotations}
        ]
        if choose_category(cats, used, schema=schema, category=None, source=source) is not None:
            raise typed.NotTypical("several keypoint categories")
    except CodecError:
        raise typed.NotTypical("several keypoint categories") from None
    return cats


def _struct_columns(anns: list, annotator: str, fields: dict[str, list]) -> dict:
    """Every instance column but the keypoints, from the typed annotations (`fields`: the ones
    `typed.read` already collected)."""

    def col(key: str) -> list:
        return fields[key] if key in fields else list(map(attrgetter(key), anns))

    frame = [f if f is not typed.UNSET else g for f, g in zip(col("frame_id"), col("frame"))]
    return {
        "id": typed.int_column(col("id")),
        "image_id": typed.int_column(col("image_id")),
        "category_id": typed.int_column(col("category_id"), 1),
        "bbox": typed.float_column(col("bbox"), 4),
        "area": typed.float_column(col("area")),
        "iscrowd": typed.int_column(col("iscrowd"), 0),
        "annotator": [a or annotator if a is not typed.UNSET else annotator for a in col("annotator")],
        "track_id": typed.int_column(col("track_id")),
        "frame": typed.int_column(frame),
        "num_keypoints": typed.int_column(col("num_keypoints")),
        "extra": {"source_id": typed.int_column(col("source_id"))}
        if anns[0].source_id is not typed.UNSET
        else None,
    }


def _ints(where: str, key: str, values: list, default: int = NONE) -> np.ndarray:
    try:
        return int_col(values, default)
    except OverflowError as e:
        raise OverflowError(f"{where}, field {key!r}: {e}") from None


def _decode_images(raw: list, source: str, img_of: dict[int, str], log: DecodeLog) -> Images:
    objs = [im if isinstance(im, dict) else {} for im in raw]
    ids = _ints("images", "id", [im.get("id") for im in objs])
    for i in np.flatnonzero(ids == NONE).tolist():
        log.note(
            findings_for(
                "schema.missing_field",
                message=f"{source}: image #{i}, field 'id': missing or not an integer",
                source=source,
                n=1,
            )
        )
    keep = np.flatnonzero(ids != NONE)
    objs = [objs[i] for i in keep.tolist()] if len(keep) < len(objs) else objs
    names = [str(im.get("file_name", "")) for im in objs]
    img_of.update(zip(ids[keep].tolist(), names))
    return Images.build(
        id=ids[keep],
        file_name=names,
        width=_ints("images", "width", [im.get("width") for im in objs], 0),
        height=_ints("images", "height", [im.get("height") for im in objs], 0),
        source=[source] * len(objs),
    )


def _fill_frames_from_images(instances: Instances, raw_images: list) -> None:
    """PoseTrack keeps `frame_id` on the image; copy it onto instances that lack one."""
    frames = {
        as_int(im.get("id")): as_int(im.get("frame_id"))
        for im in raw_images
        if isinstance(im, dict) and "frame_id" in im
    }
    if not frames or not len(instances):
        return
    missing = instances.frame == NONE
    if missing.any():
        instances.frame[missing] = [frames.get(i, NONE) for i in instances.image_id[missing].tolist()]
