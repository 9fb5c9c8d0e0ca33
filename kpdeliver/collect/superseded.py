"""Reworked labels replace the ones they answer.

An annotator returns reworked labels under `annotations/<annotator>/rework/<round>/` (the file
route: the edited rework package; the live route: `kpdeliver pull` writes the rework project's
export there). For each (annotator, image) with labels in a rework export, the labels of the
newest round are the annotator's labels of that image: their earlier labels of it (the first
export, older rounds) are not collected. An image a rework export leaves without any instance
keeps the older labels. The older exports' decode rejects and findings of that image go with them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from kpdeliver.model import Instances

REWORK_FOLDER = "rework"


def rework_round(source: str) -> str | None:
    """The round folder of a rework export key (`annotations/<who>/rework/<round>/...`; '' for a
    file directly under `rework/`), None for any other export."""
    parts = str(source).split("/")
    if len(parts) >= 4 and parts[0] == "annotations" and parts[2] == REWORK_FOLDER:
        return parts[3] if len(parts) > 4 else ""
    return None


def latest_rounds(instances: Instances) -> dict[tuple[str, int], str]:
    """(annotator, batch image id) -> the newest rework round with labels of it."""
    sources = instances.extra.get("source")
    latest: dict[tuple[str, int], str] = {}
    if sources is None:
        return latest
    for who, image, source in zip(
        instances.annotator.tolist(), instances.image_id.tolist(), sources.tolist(), strict=True
    ):
        r = rework_round(source)
        if r is not None and image >= 0 and r >= latest.get((who, image), r):
            latest[(who, image)] = r
    return latest


def _kept(pairs: list, sources: list, latest: dict) -> np.ndarray:
    return np.fromiter(
        (p not in latest or rework_round(s) == latest[p] for p, s in zip(pairs, sources, strict=True)),
        bool,
        len(pairs),
    )


def supersede_reworked(instances: Instances, latest: dict[tuple[str, int], str]) -> Instances:
    """The instances without those a newer rework round of the same annotator and image replaces."""
    if not latest:
        return instances
    pairs = list(zip(instances.annotator.tolist(), instances.image_id.tolist(), strict=True))
    return instances.take(np.flatnonzero(_kept(pairs, instances.extra["source"].tolist(), latest)))


def supersede_rows(
    table: pa.Table, latest: dict[tuple[str, int], str], image_ids: dict[str, int]
) -> pa.Table:
    """Rows of decode rejects or collect findings (annotator, image_id or file_name, source) without
    those of an export a newer rework round replaces for that annotator and image."""
    if not latest or not table.num_rows:
        return table
    if "file_name" in table.column_names:  # a finding's image_id may be its export's own
        ids = [image_ids.get(n, -1) for n in table["file_name"].to_pylist()]
    else:
        ids = table["image_id"].to_pylist()
    pairs = list(zip(table["annotator"].to_pylist(), ids, strict=True))
    return table.filter(
        pa.array(_kept(pairs, [str(s) for s in table["source"].to_pylist()], latest), pa.bool_())
    )
