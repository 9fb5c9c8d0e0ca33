"""One category table for a delivery, from the categories each export declares.

Exports number their categories as their tool does: a COCO file may call its person category 3
(or 0, or 17), a CVAT export numbers its labels 1.., a YOLO tree its classes from 0. A delivery
keeps each declared category, merged by name: the first export (in annotator order, then gold)
that declares a name fixes its id, and every other export's instances of that name are renumbered
onto it; an id already taken by another name moves to the next free one. An id an export does not
declare is left as it is, so the row rules still call it unknown.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from kpdeliver.model import Category, Instances


def merge_categories(
    parts: list[tuple[Instances, tuple[Category, ...]]], fallback: tuple[Category, ...]
) -> tuple[list[Instances], tuple[Category, ...]]:
    """Each part's instances on the merged ids, and the merged table (`fallback` when no part
    declares a category)."""
    by_name: dict[str, Category] = {}
    taken: set[int] = set()
    out = []
    for instances, declared in parts:
        mapping: dict[int, int] = {}
        for c in declared:
            merged = by_name.get(c.name)
            if merged is None:
                new_id = c.id if c.id not in taken else max(taken) + 1
                merged = by_name[c.name] = Category(new_id, c.name, c.supercategory)
                taken.add(new_id)
            mapping.setdefault(c.id, merged.id)
        out.append(_renumbered(instances, mapping))
    table = tuple(sorted(by_name.values(), key=lambda c: c.id))
    return out, table or fallback


def _renumbered(instances: Instances, mapping: dict[int, int]) -> Instances:
    if not len(instances) or all(a == b for a, b in mapping.items()):
        return instances
    old = np.fromiter(mapping, np.int64, len(mapping))
    new = np.fromiter(mapping.values(), np.int64, len(mapping))
    order = np.argsort(old)
    pos = np.clip(np.searchsorted(old[order], instances.category_id), 0, len(old) - 1)
    hit = old[order][pos] == instances.category_id
    return replace(instances, category_id=np.where(hit, new[order][pos], instances.category_id))
