"""Reworked labels replace the ones they answer.

An annotator returns reworked labels under `annotations/<annotator>/rework/<round>/` (the file
route: the edited rework package; the live route: `kpdeliver pull` writes the rework project's
export there). For each (annotator, image) with labels in a rework export, the labels of the
newest round are the annotator's labels of that image: their earlier labels of it (the first
export, older rounds) are not collected. An image a rework export leaves without any instance
keeps the older labels.
"""
from __future__ import annotations

import numpy as np

from kpdeliver.model import Instances

REWORK_FOLDER = "rework"


def rework_round(source: str) -> str | None:
    """The round folder of a rework export key (`annotations/<who>/rework/<round>/...`; '' for a
    file directly under `rework/`), None for any other export."""
    parts = str(source).split("/")
    if len(parts) >= 4 and parts[0] == "annotations" and parts[2] == REWORK_FOLDER:
        return parts[3] if len(parts) > 4 else ""
    return None


def supersede_reworked(instances: Instances) -> Instances:
    """The instances without those a newer rework round of the same annotator and image replaces."""
    sources = instances.extra.get("source")
    if sources is None or not len(instances):
        return instances
    rounds = [rework_round(s) for s in sources.tolist()]
    keys = list(zip(instances.annotator.tolist(), instances.image_id.tolist(), strict=True))
    latest: dict[tuple[str, int], str] = {}
    for key, r in zip(keys, rounds, strict=True):
        if r is not None and key[1] >= 0 and r >= latest.get(key, r):
            latest[key] = r
    if not latest:
        return instances
    keep = np.fromiter((key not in latest or r == latest[key] for key, r in zip(keys, rounds, strict=True)), bool, len(keys))
    return instances.take(np.flatnonzero(keep))
