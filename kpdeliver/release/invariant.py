"""The delivery invariant: a release never loses or misrepresents a label. Checked by `verify` on
every release, from the files the manifest lists (so a file swapped or copied and re-hashed into a
rewritten manifest is still caught):

- every input instance is delivered (index/annotations.parquet), held back with a finding
  (qa/quarantine.parquet) or review-only, as the manifest's counts say;
- every delivered image has exactly one YOLO image, whose sha256 is the batch image's
  (index/images.parquet), and one label file with as many lines as its delivered instances, each line
  the keypoints of that instance; no YOLO file belongs to no delivered image;
- no two delivered images share a file name;
- COCO, YOLO and index/annotations.parquet hold the same instances;
- no delivered image has a held-back label (it would ship that person as background).

Each breach is (release-relative path of the file at fault, what is wrong), in plain words.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kpdeliver.codecs.yolo_pose import yolo_stem
from kpdeliver.storage import ObjectStore, StorageError, StoreUnreachable, join_key

IMAGES, ANNOTATIONS, QUARANTINE = "index/images.parquet", "index/annotations.parquet", "qa/quarantine.parquet"
DELIVERED_STATUS = ("delivered", "unlabeled")
_TOLERANCE = 2e-6  # label coordinates carry 7 decimals of the image side

Breach = tuple[str, str]


def check_invariant(store: ObjectStore, prefix: str, manifest: dict, *, workers: int = 8) -> list[Breach]:
    """Every breach of the delivery invariant by the release under `prefix` (manifest already read)."""
    files, counts = manifest.get("files") or {}, manifest.get("counts") or {}
    if not any(p.startswith(("index/", "yolo/")) for p in files) and not any(
        counts.get(k) for k in ("images_delivered", "instances_in", "instances_delivered")
    ):
        return []  # by its counts, nothing was delivered and nothing came in: no label to lose
    tables = {}
    for path in (IMAGES, ANNOTATIONS, QUARANTINE):
        if path not in files:
            return [(path, "not in the release: the delivery invariant cannot be checked")]
        try:
            data = store.get(join_key(prefix, path))
            # in this thread: Arrow's pools' native threads alive at exit can abort `verify` (exit 134)
            tables[path] = pq.ParquetFile(pa.BufferReader(data), pre_buffer=False).read(use_threads=False)
        except StoreUnreachable:
            raise
        except (StorageError, pa.ArrowException, OSError) as e:
            return [(path, f"cannot be read: the delivery invariant cannot be checked ({e})")]
    images, annotations, quarantine = tables[IMAGES], tables[ANNOTATIONS], tables[QUARANTINE]
    delivered = images.filter(pc.is_in(images["status"], pa.array(DELIVERED_STATUS)))
    breaches = _accounting(counts, annotations, quarantine)
    breaches += _background(delivered, quarantine)
    breaches += _unique_names(delivered)
    breaches += _yolo_files(files, delivered)
    breaches += _labels(store, prefix, files, delivered, annotations, workers)
    breaches += _coco(store, prefix, files, delivered, annotations)
    return breaches


def _accounting(counts: dict, annotations: pa.Table, quarantine: pa.Table) -> list[Breach]:
    out = []
    delivered = annotations["annotation_id"].to_numpy()
    held = quarantine["annotation_id"].drop_null().to_numpy()
    wants = (
        (ANNOTATIONS, annotations.num_rows, "instances_delivered", "delivered instances"),
        (QUARANTINE, quarantine.num_rows, "instances_quarantined", "held-back instances"),
    )
    for path, rows, key, what in wants:
        if counts.get(key) != rows:
            out.append((path, f"{rows} {what} but the manifest counts {counts.get(key)}"))
    n_in, review = counts.get("instances_in"), counts.get("instances_review_only", 0)
    accounted = annotations.num_rows + quarantine.num_rows + (review if isinstance(review, int) else 0)
    if isinstance(n_in, int) and accounted != n_in:
        out.append(
            (
                QUARANTINE,
                f"{annotations.num_rows} delivered + {quarantine.num_rows} held back + {review} "
                f"review-only instances, but {n_in} came in: some are unaccounted for",
            )
        )
    if len(np.unique(delivered)) != len(delivered):
        out.append((ANNOTATIONS, "an annotation id is listed twice"))
    both = np.intersect1d(delivered, held)
    if len(both):
        out.append((QUARANTINE, f"annotations {both[:5].tolist()} are both delivered and held back"))
    no_finding = [
        a for a, c in zip(quarantine["annotation_id"].to_pylist(), quarantine["checks"].to_pylist()) if not c
    ]
    if no_finding:
        out.append((QUARANTINE, f"annotations {no_finding[:5]} are held back without a finding"))
    return out


def _background(delivered: pa.Table, quarantine: pa.Table) -> list[Breach]:
    """A delivered image with a held-back label would teach a model that person is background."""
    held_on = quarantine.filter(pc.is_valid(quarantine["image_id"]))
    shipped = np.isin(held_on["image_id"].to_numpy(), delivered["image_id"].to_numpy())
    names = np.asarray(held_on["file_name"].to_pylist(), dtype=object)[shipped]
    ids = held_on["annotation_id"].to_numpy()[shipped]
    return [
        (
            QUARANTINE,
            f"image {n!r} is delivered although its label {a} is held back: the person on it "
            "would ship as background",
        )
        for n, a in zip(names.tolist(), ids.tolist())
    ]


def _unique_names(delivered: pa.Table) -> list[Breach]:
    names, counts = np.unique(
        np.asarray(delivered["file_name"].to_pylist(), dtype=object).astype(str), return_counts=True
    )
    return [
        (IMAGES, f"{n} delivered images share the file name {name!r}")
        for name, n in zip(names, counts)
        if n > 1
    ]


def _yolo_paths(delivered: pa.Table) -> tuple[list[str], list[str]]:
    """Each delivered image's YOLO label and image paths (release-relative)."""
    labels, images = [], []
    for name, split in zip(delivered["file_name"].to_pylist(), delivered["split"].to_pylist()):
        stem = yolo_stem(name)
        labels.append(f"yolo/labels/{split}/{stem}.txt")
        images.append(f"yolo/images/{split}/{stem}{PurePosixPath(name).suffix}")
    return labels, images


def _yolo_files(files: dict, delivered: pa.Table) -> list[Breach]:
    labels, images = _yolo_paths(delivered)
    names = delivered["file_name"].to_pylist()
    out = _one_each(files, "yolo/labels/", labels, names, "label file")
    if any(p.startswith("yolo/images/") for p in files):  # images are copied (yolo.copy_images)
        out += _one_each(files, "yolo/images/", images, names, "image")
        for path, name, sha in zip(images, names, delivered["sha256"].to_pylist()):
            held = files[path].get("sha256") if isinstance(files.get(path), dict) else None
            if path in files and held != sha:
                out.append(
                    (
                        path,
                        f"holds sha256 {str(held)[:16]}… but image {name!r} of the batch is "
                        f"{str(sha)[:16]}…: it is another image, swapped or replaced",
                    )
                )
    return out


def _one_each(files: dict, folder: str, expected: list[str], names: list, what: str) -> list[Breach]:
    want = dict(zip(expected, names))
    out = [
        (path, f"the YOLO {what} of delivered image {name!r} is missing")
        for path, name in want.items()
        if path not in files
    ]
    out += [
        (path, f"a YOLO {what} of no delivered image (a copy, or left over)")
        for path in files
        if path.startswith(folder) and path not in want
    ]
    return out


def _read_all(store: ObjectStore, prefix: str, paths: list[str], workers: int) -> list[bytes | None]:
    def read(path: str) -> bytes | None:
        try:
            return store.get(join_key(prefix, path))
        except StoreUnreachable:
            raise
        except StorageError:
            return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(read, paths))


def _instances(annotations: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(annotation ids, image ids, keypoints [n, K, 3]) of index/annotations.parquet."""
    k = annotations.schema.field("keypoints").type.list_size
    flat = annotations["keypoints"].combine_chunks().flatten().flatten().to_numpy(zero_copy_only=False)
    return (
        annotations["annotation_id"].to_numpy(),
        annotations["image_id"].to_numpy(),
        np.asarray(flat, np.float64).reshape(annotations.num_rows, k, 3),
    )


def _labels(
    store: ObjectStore, prefix: str, files: dict, delivered: pa.Table, annotations: pa.Table, workers: int
) -> list[Breach]:
    """Each label file: as many lines as the image's delivered instances, each that instance's keypoints."""
    paths, _ = _yolo_paths(delivered)
    present = [i for i, p in enumerate(paths) if p in files]
    blobs = _read_all(store, prefix, [paths[i] for i in present], workers)
    ids, image_of, kps = _instances(annotations)
    order = np.argsort(image_of, kind="stable")  # label lines follow the delivered instances' order per image
    lo = np.searchsorted(image_of[order], delivered["image_id"].to_numpy(), side="left")
    hi = np.searchsorted(image_of[order], delivered["image_id"].to_numpy(), side="right")
    n_listed = delivered["n_instances"].fill_null(-1).to_numpy()
    names, width = delivered["file_name"].to_pylist(), 5 + 3 * kps.shape[1]
    out, rows, images, lines = [], [], [], []
    for i, blob in zip(present, blobs):
        text = [ln for ln in blob.splitlines() if ln.strip()] if blob is not None else None
        if text is None:
            out.append((paths[i], f"cannot be read: the labels of image {names[i]!r}"))
        elif not len(text) == n_listed[i] == hi[i] - lo[i]:
            out.append(
                (
                    paths[i],
                    f"{len(text)} label lines but image {names[i]!r} has {hi[i] - lo[i]} delivered "
                    f"instances in {ANNOTATIONS} ({n_listed[i]} in {IMAGES})",
                )
            )
        elif len(b" ".join(text).split()) != len(text) * width:
            out.append((paths[i], f"the label lines of image {names[i]!r} do not hold {width} values each"))
        elif text:
            rows.append(order[lo[i] : hi[i]])
            images.append(np.full(len(text), i))
            lines.append(b" ".join(text))
    if not lines:
        return out
    got = (
        np.asarray(b" ".join(lines).split(), np.float64)
        .reshape(-1, width)[:, 5:]
        .reshape(-1, kps.shape[1], 3)
    )
    rows_, images_ = np.concatenate(rows), np.concatenate(images)
    w, h = (delivered[c].to_numpy().astype(np.float64)[images_] for c in ("width", "height"))
    bad = _differs(got, kps[rows_], w, h)
    for i in np.unique(images_[bad]).tolist():
        first = int(ids[rows_[bad & (images_ == i)][0]])
        out.append(
            (
                paths[i],
                f"its lines are not the keypoints of image {names[i]!r} (annotation {first} in "
                f"{ANNOTATIONS} differs): another image's labels, or altered",
            )
        )
    return out


def _differs(got: np.ndarray, kps: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """[n] bool: label line keypoints (normalised) that are not the instance's. A labeled point is
    written clipped to the frame, or `0 0 0` when outside (yolo.outside: zero)."""
    x, y, v = kps[..., 0] / w[:, None], kps[..., 1] / h[:, None], kps[..., 2]
    inside = (x >= 0) & (x <= 1) & (y >= 0) & (y <= 1)
    lv = got[..., 2]
    written = (
        (lv == v)
        & (np.abs(got[..., 0] - np.clip(x, 0, 1)) <= _TOLERANCE)
        & (np.abs(got[..., 1] - np.clip(y, 0, 1)) <= _TOLERANCE)
    )
    dropped = (lv == 0) & (got[..., 0] == 0) & (got[..., 1] == 0) & ((v <= 0) | ~inside)
    return ~(written | dropped).all(axis=1)


def _coco(
    store: ObjectStore, prefix: str, files: dict, delivered: pa.Table, annotations: pa.Table
) -> list[Breach]:
    """Each coco/<split>.json: the delivered images and instances of its split, keypoints as indexed."""
    ids, _, kps = _instances(annotations)
    split_of = np.asarray(annotations["split"].to_pylist(), dtype=object)
    image_split = np.asarray(delivered["split"].to_pylist(), dtype=object)
    out = []
    splits = sorted(
        {str(s) for s in image_split.tolist()}
        | {p[5:-5] for p in files if p.startswith("coco/") and p.endswith(".json")}
    )
    for split in splits:
        path = f"coco/{split}.json"
        if path not in files:
            out.append(
                (path, f"missing: {int((image_split == split).sum())} delivered images are in split {split}")
            )
            continue
        try:
            doc = orjson.loads(store.get(join_key(prefix, path)))
            got_ids = np.asarray([a.get("source_id", a["id"]) for a in doc["annotations"]], np.int64)
            got_kps = np.asarray([a["keypoints"] for a in doc["annotations"]], np.float64).reshape(
                len(got_ids), -1
            )
            got_names = sorted(str(im["file_name"]) for im in doc["images"])
        except StoreUnreachable:
            raise
        except (StorageError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            out.append((path, f"cannot be read as COCO keypoints ({e})"))
            continue
        mine = split_of == split
        if got_names != sorted(delivered.filter(pa.array(image_split == split))["file_name"].to_pylist()):
            out.append((path, f"its images are not the delivered images of split {split} in {IMAGES}"))
        want = dict(zip(ids[mine].tolist(), range(int(mine.sum()))))
        if sorted(got_ids.tolist()) != sorted(want) or len(got_ids) != len(want):
            out.append(
                (
                    path,
                    f"its {len(got_ids)} annotations are not the {len(want)} of split {split} in "
                    f"{ANNOTATIONS}",
                )
            )
            continue
        at = np.asarray([want[i] for i in got_ids.tolist()], np.int64)
        if len(at) and not np.allclose(
            got_kps, kps[mine].reshape(int(mine.sum()), -1)[at], rtol=1e-9, atol=1e-6
        ):
            out.append((path, f"its keypoints differ from {ANNOTATIONS}"))
    return out
