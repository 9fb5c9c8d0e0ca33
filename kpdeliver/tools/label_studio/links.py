"""Links from findings back to the Label Studio task a person can open and fix.

A pulled export is `annotations/<annotator>/label-studio-<project>.json` and its image ids are
task ids, which collect keeps per instance (`source`, `source_image_id`). A finding on an
instance therefore names its task: `<url>/projects/<project>/data?task=<task>`.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from kpdeliver.model import Dataset

LINK_FIELD = pa.field("link", pa.string())
_EXPORT = re.compile(r"(?:^|/)label-studio-(\d+)\.json$")


def task_url(url: str, project: int, task: int) -> str:
    return f"{url.rstrip('/')}/projects/{project}/data?task={task}"


def instance_links(dataset: Dataset, url: str) -> np.ndarray:
    """The task URL of each instance that came from a pulled Label Studio export, else None."""
    ins = dataset.instances
    out = np.full(len(ins), None, dtype=object)
    source = ins.extra.get("source")
    if source is None:
        return out
    task = ins.extra.get("source_image_id", ins.image_id)
    for i, (src, t) in enumerate(zip(source.tolist(), task.tolist())):
        m = _EXPORT.search(str(src))
        if m and t >= 0:
            out[i] = task_url(url, int(m.group(1)), int(t))
    return out


def with_task_links(findings: pa.Table, dataset: Dataset, url: str) -> pa.Table:
    """`findings` (FINDINGS_SCHEMA) with their `link` set to the task of the finding's annotation, else of its image
    and annotator (findings on an image, e.g. an annotator's missing person); links a finding
    already has are kept."""
    links = instance_links(dataset, url)
    ins = dataset.instances
    by_id = {int(i): link for i, link in zip(ins.id.tolist(), links) if link is not None}
    by_item = {
        (int(im), str(a)): link
        for im, a, link in zip(ins.image_id.tolist(), ins.annotator.tolist(), links)
        if link is not None
    }
    ann_ids = findings["annotation_id"].to_pylist()
    items = zip(findings["image_id"].to_pylist(), findings["annotator"].to_pylist())
    column = [
        old or (by_id.get(a) if a in by_id else by_item.get((im, who)))
        for old, a, (im, who) in zip(findings["link"].to_pylist(), ann_ids, items)
    ]
    return findings.set_column(findings.column_names.index("link"), LINK_FIELD, pa.array(column, pa.string()))
