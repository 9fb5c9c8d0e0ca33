"""The file route: rework task packages per annotator, in their tools' formats, beside the batch.

`tasks/rework/<round>/<annotator>/` holds what assign's task packages hold (CVAT XML, Label
Studio JSON and config, a Supervisely project), over only the images going back, with the
annotator's own labels preloaded; `rework.csv` lists each reason (keypoint, check, the finding's
words, the reference position), and each Label Studio task carries them as `data.rework`. The
edited export comes back under `annotations/<annotator>/rework/<round>/`.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.assign.assignments import task_packages
from kpdeliver.model import Dataset
from kpdeliver.rework.items import ITEM_SCHEMA, item_text

REWORK_TASKS = "tasks/rework"


def package_prefix(round_: str, annotator: str) -> str:
    return f"{REWORK_TASKS}/{round_}/{annotator}/"


def return_prefix(round_: str, annotator: str) -> str:
    """Where the reworked export of this round goes back (the normal collect path)."""
    return f"annotations/{annotator}/rework/{round_}/"


def texts_by_image(items: pa.Table) -> dict[str, str]:
    """file name -> the finding's words for one annotator's items."""
    rows: dict[str, list[dict]] = {}
    for r in items.to_pylist():
        rows.setdefault(r["file_name"], []).append(r)
    return {name: item_text(rs) for name, rs in rows.items()}


def annotator_labels(labels: Dataset, annotator: str, file_names: list[str]) -> Dataset:
    """The annotator's own labels on these images (every image kept, labeled or not)."""
    images = np.isin(labels.images.file_name, file_names)
    part = labels.subset_images(images)
    return part.subset_instances(part.instances.annotator == annotator)


def rework_packages(labels: Dataset, items: pa.Table, round_: str) -> dict[str, bytes]:
    """key -> bytes of every annotator's rework package (`items`: the items to send, ITEM_SCHEMA)."""
    files: dict[str, bytes] = {}
    for annotator in sorted(set(items["annotator"].to_pylist())):
        mine = items.filter(pc.equal(items["annotator"], annotator))
        names = sorted(set(mine["file_name"].to_pylist()))
        part = annotator_labels(labels, annotator, names)
        assignments = pa.table(
            {
                "image_id": pa.array(part.images.id, pa.int64()),
                "file_name": pa.array(part.images.file_name.tolist(), pa.string()),
                "annotator": [annotator] * len(part.images),
                "role": ["rework"] * len(part.images),
            }
        )
        prefix = package_prefix(round_, annotator)
        for key, data in task_packages(part, assignments, prelabels=part).items():
            if key.startswith(f"tasks/{annotator}/"):
                files[prefix + key[len(f"tasks/{annotator}/") :]] = data
        texts = texts_by_image(mine)
        tasks = orjson.loads(files[prefix + "tasks.json"])
        for task in tasks:
            task["data"]["rework"] = texts.get(task["data"]["image"], "")
        files[prefix + "tasks.json"] = orjson.dumps(tasks, option=orjson.OPT_INDENT_2)
        files[prefix + "rework.csv"] = _items_csv(mine)
        files[prefix + "README.txt"] = (
            f"Rework {round_} for {annotator}: {len(names)} image(s) with your labels, each with the reason it "
            f"came back (rework.csv; in the Label Studio tasks as data.rework). Fix the labels in your tool, "
            f"export in any supported format and put the export under {return_prefix(round_, annotator)} "
            "beside the batch; the next delivery takes them in place of your earlier labels of those images.\n"
        ).encode()
    return files


def _items_csv(items: pa.Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    cols = [c for c in ITEM_SCHEMA.names if c != "annotator"]
    writer.writerow(cols)
    for r in items.to_pylist():
        writer.writerow(["" if r[c] is None else r[c] for c in cols])
    return out.getvalue().encode()
