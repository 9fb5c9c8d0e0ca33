"""The free sample's package, what a prospect receives, built from the sample's published release:

    index.html          the sample page (`sample_page.py`)
    coco/sample.json    every delivered label of the sample, COCO keypoints with visibility flags
    yolo/…              the release's YOLO Pose tree: data.yaml (kpt_shape, flip_idx), images, labels

The labels carry no annotator name (the COCO `annotator` field is dropped) and the package holds
none of the release's QA files: those are the vendor's.
"""

from __future__ import annotations

from collections import Counter

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from kpdeliver.assign.sample import SampleChoice
from kpdeliver.codecs.coco.decoder import decode
from kpdeliver.report.sample_page import SampleInputs, render_sample_page
from kpdeliver.schema import KeypointSchema
from kpdeliver.storage import ObjectStore, join_key

PAGE = "index.html"
COCO = "coco/sample.json"
PRIVATE_FIELDS = ("annotator",)  # COCO annotation fields a prospect never sees


def merged_coco(release: ObjectStore, prefix: str, files: list[str]) -> bytes:
    """Every split's COCO file as one, without annotator names."""
    doc: dict = {"images": [], "annotations": []}
    for path in sorted(f for f in files if f.startswith("coco/") and f.endswith(".json")):
        part = orjson.loads(release.get(join_key(prefix, path)))
        for key, value in part.items():
            if key in ("images", "annotations"):
                doc[key] += value
            else:
                doc.setdefault(key, value)
    for a in doc["annotations"]:
        for name in PRIVATE_FIELDS:
            a.pop(name, None)
    return orjson.dumps(doc)


def _listing(files: list[str]) -> list[str]:
    """The package's files as a reader wants them listed: folders of many files counted."""
    folders = Counter(f.rsplit("/", 1)[0] + "/" for f in files if f.count("/") >= 2)
    single = [f for f in files if f.count("/") < 2]
    return sorted(single) + [f"{d} ({n} files)" for d, n in sorted(folders.items())]


def build_sample_package(
    *,
    release: ObjectStore,
    prefix: str,
    batch: ObjectStore,
    out: ObjectStore,
    schema: KeypointSchema,
    choice: SampleChoice,
    n_batch: int,
    client: str,
    dataset: str,
) -> str:
    """Write the package of the sample release at `prefix` to `out`; the page's key. `batch`: the
    sample's batch (its images are drawn on the page)."""
    manifest = orjson.loads(release.get(join_key(prefix, "manifest.json")))
    files = sorted(manifest["files"])
    coco_bytes = merged_coco(release, prefix, files)
    out.put(COCO, coco_bytes)
    written = [COCO]
    for path in (f for f in files if f.startswith("yolo/")):
        out.put(path, release.get(join_key(prefix, path)))
        written.append(path)
    tables = {
        name: pq.read_table(pa.BufferReader(release.get(join_key(prefix, name))))
        for name in ("index/images.parquet", "qa/quarantine.parquet")
    }
    delivered = decode(coco_bytes, schema=schema).dataset
    page = render_sample_page(
        SampleInputs(
            client=client,
            dataset=dataset,
            schema=schema,
            n_batch=n_batch,
            choice=choice,
            delivered=delivered,
            images=tables["index/images.parquet"],
            held_back=tables["qa/quarantine.parquet"],
            image_bytes=lambda name: batch.get(f"images/{name}"),
            files=_listing([PAGE, *written]),
        )
    )
    out.put(PAGE, page.encode())
    return PAGE
