"""Ingest a client batch: list its images, hash them, read their size from the header (no full
decode), drop exact duplicates and refuse unsafe keys — each with a finding, nothing silent.

Batch layout under the source location:
    images/...                      the images (any depth)
    annotations/<annotator>/...     each annotator's exports
    gold/...                        optional trusted reference labels (COCO)
    checksums.sha256                optional `<sha256>  <key>` lines taken when the batch was made
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kpdeliver.findings import concat_findings, findings_for
from kpdeliver.images import IMAGE_EXTENSIONS, image_size
from kpdeliver.model import Images
from kpdeliver.storage import ObjectStore, StorageError, UnsafeKeyError, check_key

IMAGE_PREFIX = "images/"
CHECKSUMS_KEY = "checksums.sha256"


@dataclass
class IngestResult:
    images: Images  # accepted images; file_name is the key below images/
    findings: pa.Table
    listed: int  # every image key found, accepted or not (for the accounting)
    rejected_keys: list[str]


def read_checksums(store: ObjectStore) -> dict[str, str]:
    """Expected sha256 per key from the batch's `checksums.sha256`, if the batch has one."""
    if not store.exists(CHECKSUMS_KEY):
        return {}
    out = {}
    for line in store.get(CHECKSUMS_KEY).decode("utf-8", errors="replace").splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            out[parts[1].lstrip("*")] = parts[0].lower()
    return out


def list_image_keys(store: ObjectStore) -> list[str]:
    return [k for k in store.list(IMAGE_PREFIX) if k.lower().endswith(IMAGE_EXTENSIONS)]


def ingest_images(store: ObjectStore, keys: list[str] | None = None) -> IngestResult:
    """Hash and size every image; the first of identical images (by sorted key) is kept."""
    keys = sorted(keys if keys is not None else list_image_keys(store))
    expected = read_checksums(store)
    findings, rejected = [], []
    ids, names, widths, heights, shas, sources = [], [], [], [], [], []
    first_of: dict[str, str] = {}

    def reject(check: str, key: str, why: str) -> None:
        rejected.append(key)
        findings.append(findings_for(check, message=f"{store.location(key)}: {why}", file_name=key, source=key, n=1))

    for key in keys:
        try:
            check_key(key)
        except UnsafeKeyError as e:
            reject("ingest.unsafe_key", key, f"refused: {e}")
            continue
        try:
            data = store.get(key)
        except StorageError as e:
            reject("ingest.unreadable_image", key, f"cannot be read ({e})")
            continue
        sha = hashlib.sha256(data).hexdigest()
        if key in expected and expected[key] != sha:
            reject("ingest.checksum_mismatch", key,
                   f"sha256 {sha[:12]}… differs from {expected[key][:12]}… in {CHECKSUMS_KEY}; the object changed after the batch was taken")
            continue
        try:
            w, h = image_size(data)
        except OSError as e:
            reject("ingest.unreadable_image", key, f"not a readable image ({e})")
            continue
        if sha in first_of:
            rejected.append(key)
            findings.append(findings_for("ingest.duplicate_image", file_name=key, source=key, n=1,
                                         message=f"{key} is byte-identical to {first_of[sha]}; dropped as a duplicate"))
            continue
        first_of[sha] = key
        ids.append(len(ids) + 1)
        names.append(key[len(IMAGE_PREFIX):])
        widths.append(w)
        heights.append(h)
        shas.append(sha)
        sources.append(key)
    images = Images.build(id=np.asarray(ids, np.int64), file_name=names, width=widths, height=heights, sha256=shas, source=sources)
    return IngestResult(images, concat_findings(findings), len(keys), rejected)
