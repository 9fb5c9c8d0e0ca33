"""Ingest a client batch: list its images, hash them, read their displayed size from the header
and check they decode (cheaply, never a full decode of a large image), drop exact duplicates and
refuse unsafe keys and symbolic links — each with a finding, nothing silent.

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
from kpdeliver.images import FORMAT_EXTENSIONS, IMAGE_EXTENSIONS, ImageProblem, read_image_header
from kpdeliver.model import Images
from kpdeliver.progress import tracked
from kpdeliver.storage import LinkError, ObjectStore, StorageError, UnsafeKeyError, check_key

IMAGE_PREFIX = "images/"
CHECKSUMS_KEY = "checksums.sha256"


REFUSED_SCHEMA = pa.schema([("key", pa.string()), ("file_name", pa.string()), ("status", pa.string())])


@dataclass
class IngestResult:
    images: Images  # accepted images; file_name is the key below images/
    findings: pa.Table
    listed: int  # every image key found, accepted or not (for the accounting)
    refused: pa.Table  # REFUSED_SCHEMA: each refused image's key, file_name and status (its ingest check)


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
    explicit_keys = keys
    keys = sorted(keys if keys is not None else list_image_keys(store))
    expected = read_checksums(store)
    findings, refused = [], []
    ids, names, widths, heights, orientations, shas, sources = [], [], [], [], [], [], []
    first_of: dict[str, str] = {}
    listed = len(keys)

    def refuse(check: str, key: str, message: str) -> None:
        refused.append((key, check.removeprefix("ingest.")))
        findings.append(findings_for(check, message=message, file_name=key, source=key, n=1))

    def reject(check: str, key: str, why: str) -> None:
        refuse(check, key, f"{store.location(key)}: {why}")

    if explicit_keys is None:
        # a file under images/ that is no image format we deliver (.gif, .heic, .avif, a stray .txt) is named, not lost
        for key in sorted(set(store.list(IMAGE_PREFIX)) - set(keys)):
            listed += 1
            reject("ingest.unsupported_format", key, "not an image format the release delivers "
                   f"({', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)}); not delivered")
        # links anywhere in the batch (images, exports, gold, checksums) are never read: each is a finding
        for key, why in store.skipped():
            check = "ingest.symlink" if "link" in why else "ingest.unreadable_image"
            if key.startswith(IMAGE_PREFIX):
                listed += 1
                reject(check, key, f"{why}; refused, never read")
            else:
                findings.append(findings_for(check, message=f"{store.location(key)}: {why}; refused, never read",
                                             file_name=key, source=key, n=1))

    for key in tracked("ingest", keys):
        try:
            check_key(key)
        except UnsafeKeyError as e:
            reject("ingest.unsafe_key", key, f"refused: {e}")
            continue
        try:
            data = store.get(key)
        except LinkError as e:
            reject("ingest.symlink", key, f"refused, never read ({e})")
            continue
        except StorageError as e:
            reject("ingest.unreadable_image", key, f"cannot be read ({e})")
            continue
        sha = hashlib.sha256(data).hexdigest()
        if key in expected and expected[key] != sha:
            reject("ingest.checksum_mismatch", key,
                   f"sha256 {sha[:12]}… differs from {expected[key][:12]}… in {CHECKSUMS_KEY}; the object changed after the batch was taken")
            continue
        try:
            header = read_image_header(data)
        except ImageProblem as e:
            reject(e.check, key, str(e))
            continue
        allowed = FORMAT_EXTENSIONS.get(header.format, ())
        if not key.lower().endswith(allowed):
            findings.append(findings_for("ingest.extension_mismatch", file_name=key, source=key, n=1,
                                         message=f"{store.location(key)}: holds a {header.format} image, not what "
                                                 "its extension says; delivered as it is"))
        if sha in first_of:
            refuse("ingest.duplicate_image", key, f"{key} is byte-identical to {first_of[sha]}; dropped as a duplicate")
            continue
        first_of[sha] = key
        ids.append(len(ids) + 1)
        names.append(key[len(IMAGE_PREFIX):])
        widths.append(header.width)
        heights.append(header.height)
        orientations.append(header.orientation)
        shas.append(sha)
        sources.append(key)
    images = Images.build(id=np.asarray(ids, np.int64), file_name=names, width=widths, height=heights, sha256=shas,
                          source=sources, orientation=orientations)
    refused_keys = [k for k, _ in refused]
    refused_table = pa.table({"key": refused_keys, "file_name": [k.removeprefix(IMAGE_PREFIX) for k in refused_keys],
                              "status": [status for _, status in refused]}, schema=REFUSED_SCHEMA)
    return IngestResult(images, concat_findings(findings), listed, refused_table)
