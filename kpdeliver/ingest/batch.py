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
import os
import posixpath
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kpdeliver.findings import concat_findings, findings_for
from kpdeliver.images import FORMAT_EXTENSIONS, IMAGE_EXTENSIONS, ImageProblem, read_image_header
from kpdeliver.model import Images
from kpdeliver.progress import tracked
from kpdeliver.storage import LinkError, LocalStore, ObjectStore, StorageError, UnsafeKeyError, check_key

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


PROBE_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("sha256", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("orientation", pa.int64()),
        ("format", pa.string()),
        ("check", pa.string()),
        ("message", pa.string()),
    ]
)
_REMOTE_THREADS = 8  # reads from S3 wait on the network; hashing and Pillow's decoders release the GIL


def _probe_threads(store: ObjectStore) -> int:
    """A local folder's reads are quick: one thread per core, since more only contend for the GIL
    and the kernel's folder locks (on 2 cores, 8 threads spent twice the system time of 2)."""
    return (os.cpu_count() or 2) if isinstance(store, LocalStore) else _REMOTE_THREADS


def _probe(store: ObjectStore, key: str, expected: str | None) -> tuple:
    """One image's row of PROBE_SCHEMA: its hash and header, or the check that refuses it."""

    def refused(check: str, why: str) -> tuple:
        return key, None, None, None, None, None, check, f"{store.location(key)}: {why}"

    try:
        check_key(key)
    except UnsafeKeyError as e:
        return refused("ingest.unsafe_key", f"refused: {e}")
    try:
        data = store.get(key)
    except LinkError as e:
        return refused("ingest.symlink", f"refused, never read ({e})")
    except StorageError as e:
        return refused("ingest.unreadable_image", f"cannot be read ({e})")
    sha = hashlib.sha256(data).hexdigest()
    if expected is not None and expected != sha:
        return refused(
            "ingest.checksum_mismatch",
            f"sha256 {sha[:12]}… differs from {expected[:12]}… in "
            f"{CHECKSUMS_KEY}; the object changed after the batch was taken",
        )
    try:
        header = read_image_header(data)
    except ImageProblem as e:
        return refused(e.check, str(e))
    return key, sha, header.width, header.height, header.orientation, header.format, None, None


def probe_images(store: ObjectStore, keys: list[str], expected: dict[str, str]) -> pa.Table:
    """Read, hash and header-check each image (a thread pool); one PROBE_SCHEMA row per key, in order.
    Independent per key, so a batch's keys may be probed in shards anywhere the store is reachable."""
    with store.holding_folders(), ThreadPoolExecutor(min(_probe_threads(store), max(len(keys), 1))) as pool:
        rows = list(
            tracked("ingest", pool.map(lambda k: _probe(store, k, expected.get(k)), keys), total=len(keys))
        )
    return pa.Table.from_pylist([dict(zip(PROBE_SCHEMA.names, r)) for r in rows], schema=PROBE_SCHEMA)


def skipped_entries(store: ObjectStore) -> list[tuple[str, str, str]]:
    """(key, check, message) of each entry of the batch that is never probed: first each file under
    images/ in no format we deliver (.gif, .heic, .avif, a stray .txt: named, not lost), then each
    link or special file anywhere in the batch (images, exports, gold, checksums), never read."""
    formats = ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
    unsupported = [
        (
            key,
            "ingest.unsupported_format",
            f"{store.location(key)}: not an image format the release delivers ({formats}); not delivered",
        )
        for key in sorted(store.list(IMAGE_PREFIX))
        if not key.lower().endswith(IMAGE_EXTENSIONS)
    ]
    links = [
        (
            key,
            "ingest.symlink" if "link" in why else "ingest.unreadable_image",
            f"{store.location(key)}: {why}; refused, never read",
        )
        for key, why in store.skipped()
    ]
    return unsupported + links


def assemble_ingest(
    probes: pa.Table, *, skipped: Sequence[tuple[str, str, str]] = (), location=lambda key: key
) -> IngestResult:
    """The batch from its probes (any order) and its `skipped_entries`: sorted by key, the first
    of identical images kept, ids numbered in key order. `location` names a key in messages."""
    findings, refused = [], []
    kept: list[tuple] = []  # (key, sha256, width, height, orientation) of each image kept, in key order
    first_of: dict[str, str] = {}

    def refuse(check: str, key: str, message: str) -> None:
        refused.append((key, check.removeprefix("ingest.")))
        findings.append(findings_for(check, message=message, file_name=key, source=key, n=1))

    for key, check, message in skipped:
        if key.startswith(IMAGE_PREFIX):
            refuse(check, key, message)
        else:
            findings.append(findings_for(check, message=message, file_name=key, source=key, n=1))
    probes = probes.sort_by("key")
    for key, sha, width, height, orientation, fmt, check, message in zip(
        *(probes[c].to_pylist() for c in PROBE_SCHEMA.names)
    ):
        if check is not None:
            refuse(check, key, message)
            continue
        if not key.lower().endswith(FORMAT_EXTENSIONS.get(fmt, ())):
            findings.append(_extension_mismatch(key, fmt, location))
        if sha in first_of:
            refuse(
                "ingest.duplicate_image",
                key,
                f"{key} is byte-identical to {first_of[sha]}; dropped as a duplicate",
            )
            continue
        first_of[sha] = key
        kept.append((key, sha, width, height, orientation))
    listed = probes.num_rows + sum(key.startswith(IMAGE_PREFIX) for key, _, _ in skipped)
    return IngestResult(_kept_images(kept), concat_findings(findings), listed, _refused_table(refused))


def _extension_mismatch(key: str, fmt: str, location) -> pa.Table:
    """The finding of an image whose format is not what its extension says."""
    return findings_for(
        "ingest.extension_mismatch",
        file_name=key,
        source=key,
        n=1,
        message=f"{location(key)}: holds a {fmt} image, not what its extension says; delivered as it is",
    )


def _kept_images(kept: list[tuple]) -> Images:
    """The images table of the kept (key, sha256, width, height, orientation) rows; ids from 1 in order."""
    return Images.build(
        id=np.asarray([i + 1 for i in range(len(kept))], np.int64),
        file_name=[key[len(IMAGE_PREFIX) :] for key, *_ in kept],
        width=[width for _, _, width, _, _ in kept],
        height=[height for _, _, _, height, _ in kept],
        sha256=[sha for _, sha, *_ in kept],
        source=[key for key, *_ in kept],
        orientation=[orientation for *_, orientation in kept],
    )


def _refused_table(refused: list[tuple[str, str]]) -> pa.Table:
    """REFUSED_SCHEMA rows of the refused (key, status) pairs."""
    refused_keys = [k for k, _ in refused]
    return pa.table(
        {
            "key": refused_keys,
            "file_name": [k.removeprefix(IMAGE_PREFIX) for k in refused_keys],
            "status": [status for _, status in refused],
        },
        schema=REFUSED_SCHEMA,
    )


def ingest_images(store: ObjectStore, keys: list[str] | None = None) -> IngestResult:
    """Hash and size every image; the first of identical images (by sorted key) is kept. With
    explicit `keys`, links elsewhere in the batch are not looked for."""
    skipped = skipped_entries(store) if keys is None else []
    keys = sorted(keys if keys is not None else list_image_keys(store))
    return assemble_ingest(
        probe_images(store, keys, read_checksums(store)), skipped=skipped, location=store.location
    )


def shard_keys(keys: list[str], shard_size: int) -> list[list[str]]:
    """The keys in shards of about `shard_size`, each sorted. A folder's images stay in one shard (a
    video's frames) unless the folder alone outgrows a shard; units are laid out in the order of
    their name's hash, so a shard is a sample of the batch, and the same keys always shard alike."""
    units: dict[str, list[str]] = {}
    for key in sorted(keys):
        folder = posixpath.dirname(key)
        units.setdefault(key if folder == IMAGE_PREFIX.rstrip("/") else folder, []).append(key)
    for name in [n for n, members in units.items() if len(members) > shard_size]:
        units.update({key: [key] for key in units.pop(name)})
    shards: list[list[str]] = [[]]
    for name in sorted(units, key=lambda n: hashlib.blake2b(n.encode(), digest_size=8).digest()):
        if len(shards[-1]) >= shard_size:
            shards.append([])
        shards[-1].extend(units[name])
    return [sorted(s) for s in shards if s]
