"""A COCO file with several keypoint categories: each category is its own schema.

A file may hold a mouse with 17 points and a fly with 13. One read takes one category (named,
or the only one a given schema fits); the annotations of the others are reported with a
finding, never dropped silently, and with no category named the file is refused with a
sentence that lists them all (`SeveralCategories`), so a caller can read each in turn.
"""

from __future__ import annotations

import json

from kpdeliver.codecs import CodecError, DecodeLog, ItemProblem
from kpdeliver.codecs.coco.columns import as_int
from kpdeliver.codecs.json_doc import raw_json
from kpdeliver.model import NONE
from kpdeliver.schema import KeypointSchema


class SeveralCategories(CodecError):
    """The file holds several keypoint categories and the read named none; `categories` lists
    their names in file order."""

    def __init__(self, message: str, categories: list[str]) -> None:
        super().__init__(message)
        self.categories = categories


def keypoint_categories(cats: list[dict]) -> list[dict]:
    """The categories that name keypoints."""
    return [c for c in cats if isinstance(c.get("keypoints"), list) and c["keypoints"]]


def category_names(data_cats: list[dict]) -> list[str]:
    return [str(c.get("name", c.get("id"))) for c in keypoint_categories(data_cats)]


def choose_category(
    cats: list[dict], anns: list, *, schema: KeypointSchema | None, category: str | None, source: str
) -> list[dict] | None:
    """The categories this read takes, or None to read the file as a whole: when the categories
    its annotations use share one keypoint list (AP-10K names 54 species with the same 17
    points: one schema, the species stay in `category_id`)."""
    named = keypoint_categories(cats)
    if category is not None:
        hit = [c for c in named if str(c.get("name")) == category or str(c.get("id")) == category]
        if not hit:
            raise CodecError(f"{source}: no keypoint category {category!r}; it has {_listing(named, anns)}")
        return hit[:1]
    used_ids = {as_int(a.get("category_id")) for a in anns if isinstance(a, dict)}
    used = [c for c in named if as_int(c.get("id")) in used_ids]
    groups: dict[tuple, list[dict]] = {}
    for c in used:
        groups.setdefault(tuple(map(str, c["keypoints"])), []).append(c)
    if len(groups) <= 1:
        return None
    if schema is not None:
        fitting = [g for names, g in groups.items() if len(names) == schema.num_keypoints]
        if len(fitting) == 1:
            return fitting[0]
    raise SeveralCategories(
        f"{source}: holds {len(used)} keypoint categories with different keypoints ({_listing(used, anns)}), "
        "each its own schema; name one with --category NAME (or `category:` in the client config)",
        [str(c.get("name", c.get("id"))) for c in used],
    )


def _listing(named: list[dict], anns: list) -> str:
    counts: dict[int, int] = {}
    for a in anns:
        if isinstance(a, dict):
            cid = as_int(a.get("category_id"))
            counts[cid] = counts.get(cid, 0) + 1
    return "; ".join(
        f"{c.get('name')!r}: {len(c['keypoints'])} keypoints, "
        f"{counts.get(as_int(c.get('id')), 0)} annotations"
        for c in named
    )


def of_category(
    anns: list, cats: list[dict], chosen: list[dict], log: DecodeLog, *, annotator: str = ""
) -> list:
    """The annotations of the `chosen` categories. Those of other categories are counted in one
    finding per category; those whose category the file does not define are held back one by one."""
    want = {as_int(c.get("id")) for c in chosen}
    known = {as_int(c.get("id")): c for c in cats}
    others: dict[int, int]
    keep, others = [], {}
    for i, a in enumerate(anns):
        cid = as_int(a.get("category_id")) if isinstance(a, dict) else NONE
        if cid in want:
            keep.append(a)
        elif cid in known:
            others[cid] = others.get(cid, 0) + 1
        else:
            ann_id = as_int(a.get("id")) if isinstance(a, dict) else NONE
            log.hold(
                ItemProblem(
                    "schema.unknown_category",
                    log.source,
                    f"{log.source}: annotation id={ann_id} (#{i}), field 'category_id': category {cid} is not "
                    "defined by the file",
                    field="category_id",
                    annotation_id=ann_id,
                    annotator=annotator,
                    image_id=as_int(a.get("image_id")) if isinstance(a, dict) else NONE,
                    raw=raw_json(a) if isinstance(a, dict) else json.dumps(a),
                )
            )
    taken = ", ".join(repr(c.get("name")) for c in chosen)
    for cid, n in others.items():
        c = known[cid]
        k = len(c.get("keypoints") or [])
        log.quirk(
            f"{n} annotations of category {c.get('name')!r} ({k} keypoints) not read here: this read takes "
            f"category {taken}; read the other with --category {c.get('name')}",
            value=float(n),
        )
    return keep
