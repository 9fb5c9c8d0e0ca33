"""Where an image's annotation sits in a Supervisely project, and back.

A project holds datasets, each a folder with `ann/<item>.json` (and `img/<item>`, `meta/<item>.json`);
a nested dataset sits under its parent's `datasets/` folder. An image's file name in the model is
`<dataset>/<item>` (nested datasets joined by `/`, without the `datasets/` folders), so images of
the same name in two datasets stay apart and a batch image is matched by its tail or base name.
A file name that no dataset path can spell (no folder, a URL, `..`) goes to dataset `ds0`, and the
exact name is kept in the item's `meta/<item>.json` under `kpdeliver.file_name` (and instances with no
labelled point, which no graph object can hold, under `kpdeliver.empty_objects`)."""

from __future__ import annotations

import re
from posixpath import basename

ANN, ITEM_META, NESTED = "ann", "meta", "datasets"
DEFAULT_DATASET = "ds0"
RECORD = "kpdeliver"  # key of our own record in an item's meta/<item>.json
EMPTY = "empty_objects"  # in the record: instances with no labelled point (no graph object can hold them)
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


def project_file(rel: str) -> bool:
    """An annotation or item meta file of a project (relative to its root)."""
    parts = rel.split("/")
    return (
        len(parts) >= 3
        and parts[-2] in (ANN, ITEM_META)
        and parts[-1].endswith(".json")
        and not any(p.startswith(".") or p == "__MACOSX" for p in parts)
    )


def display_name(folder: str) -> str:
    """A dataset folder as a name: `a/datasets/b` -> `a/b`."""
    parts = [p for p in folder.split("/") if p]
    return "/".join(p for i, p in enumerate(parts) if not (i % 2 == 1 and p == NESTED))


def parse_ann_path(rel: str) -> tuple[str, str]:
    """(dataset folder, item) of an annotation file: `<ds>/ann/<item>.json`, or a loose `<item>.json`."""
    parts = rel.split("/")
    item = parts[-1].removesuffix(".json")
    if len(parts) >= 3 and parts[-2] == ANN:
        return "/".join(parts[:-2]), item
    return "", item


def item_meta_path(folder: str, item: str) -> str:
    return f"{folder}/{ITEM_META}/{item}.json" if folder else f"{ITEM_META}/{item}.json"


def image_name(folder: str, item: str) -> str:
    ds = display_name(folder)
    return f"{ds}/{item}" if ds else item


def _safe(part: str) -> bool:
    return bool(part) and part not in (".", "..") and not part.startswith(".") and not _UNSAFE.search(part)


def place(file_name: str, image_id: int, taken: set[tuple[str, str]]) -> tuple[str, str]:
    """(dataset folder, item) for an image; `taken` holds the (folder, lower-cased item) pairs used."""
    parts = str(file_name).split("/")
    if len(parts) > 1 and all(_safe(p) for p in parts):
        folder, item = f"/{NESTED}/".join(parts[:-1]), parts[-1]
    else:
        folder = DEFAULT_DATASET
        base = _UNSAFE.sub("_", basename(str(file_name).replace("\\", "/"))).lstrip(".")
        item = base or f"image_{image_id}"
    if (folder, item.lower()) in taken:
        item = f"{image_id}_{item}"
    taken.add((folder, item.lower()))
    return folder, item
