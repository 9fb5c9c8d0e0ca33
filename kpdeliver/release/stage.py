"""Stage a release plan in shards, so many workers can write one staging area: the plan's files
split into the global ones (COCO, indexes, QA) and image shards (each image's copy and its YOLO
label file). Every image is read once, hashed while in memory and checked against its ingest
hash before it is written; on a local store the files skip their fsync and one sync precedes the
STAGED marker (`publish` then renames the folder into the version folder). S3 to S3 copies stay
server-side, checked against the checksum S3 keeps."""

from __future__ import annotations

import posixpath
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from kpdeliver.ingest.batch import shard_keys
from kpdeliver.release.layout import SIGNOFF, STAGED, sha256_hex
from kpdeliver.release.package import ReleasePlan
from kpdeliver.release.signoff import Counts, Verdict
from kpdeliver.storage import LocalStore, ObjectStore, StorageError, join_key

LABELS, IMAGES = "yolo/labels/", "yolo/images/"


class SourceChanged(StorageError):
    """An image's bytes differ from those ingest hashed: never publish other bytes."""


@dataclass(frozen=True)
class StageShard:
    """One shard of a release's images: (source key, release path, sha256) copies and label files."""

    copies: list[tuple[str, str, str]]
    files: dict[str, bytes]


def split_plan(plan: ReleasePlan, shard_size: int) -> tuple[dict[str, bytes], list[StageShard]]:
    """(the plan's global files, its image shards), sharded like ingest (`shard_keys`)."""
    labels = {p: b for p, b in plan.files.items() if p.startswith(LABELS)}
    by_source = {c[0]: c for c in plan.copies}
    shards = []
    for keys in shard_keys(list(by_source), shard_size):
        copies = [by_source[k] for k in keys]
        label_paths = (
            LABELS + posixpath.splitext(path.removeprefix(IMAGES))[0] + ".txt" for _, path, _ in copies
        )
        shards.append(StageShard(copies, {p: labels.pop(p) for p in label_paths if p in labels}))
    rest = sorted(labels)  # labels of images not copied (yolo.copy_images: false)
    shards += [
        StageShard([], {p: labels[p] for p in rest[i : i + shard_size]})
        for i in range(0, len(rest), shard_size)
    ]
    return {p: b for p, b in plan.files.items() if not p.startswith(LABELS)}, shards


def _put(store: ObjectStore, key: str, data: bytes) -> None:
    if isinstance(store, LocalStore):
        store.put(key, data, durable=False)  # made durable by `mark_staged`'s one sync
    else:
        store.put(key, data)


def _server_side(release: ObjectStore, source: ObjectStore) -> bool:
    s3 = sys.modules.get("kpdeliver.storage.s3")  # loaded only when a store is on S3
    return s3 is not None and isinstance(release, s3.S3Store) and isinstance(source, s3.S3Store)


def stage_files(release: ObjectStore, prefix: str, files: dict[str, bytes]) -> dict[str, dict]:
    """Write files under `prefix`; their STAGED listing entries."""
    listing = {}
    with release.holding_folders():
        for path, data in files.items():
            _put(release, join_key(prefix, path), data)
            listing[path] = {"size": len(data), "sha256": sha256_hex(data)}
    return listing


def stage_copies(
    release: ObjectStore, source: ObjectStore, prefix: str, copies: list[tuple[str, str, str]]
) -> dict[str, dict]:
    """Copy images under `prefix`, each checked against its ingest sha256; their listing entries."""
    listing = {}
    with release.holding_folders(), source.holding_folders():
        for src_key, path, sha in copies:
            listing[path] = _stage_copy(release, source, src_key, join_key(prefix, path), sha)
    return listing


def _stage_copy(release: ObjectStore, source: ObjectStore, src_key: str, dst: str, sha: str) -> dict:
    """One image copied to `dst` (read once, checked against its ingest sha256); its listing entry."""
    if _server_side(release, source):
        release.copy_from(source, src_key, dst)
        got, size, data = release.sha256(dst), release.size(dst), None
    else:
        data = source.get(src_key)
        got, size = sha256_hex(data), len(data)
    if got != sha:
        raise SourceChanged(
            f"{source.location(src_key)} changed after ingest (sha256 {got[:12]}… instead of "
            f"{sha[:12]}…); run the delivery again to re-ingest it"
        )
    if data is not None:
        _put(release, dst, data)
    return {"size": size, "sha256": sha}


def staged_marker(listing: dict[str, dict], counts: Counts, verdict: Verdict, signoff: bytes | None) -> dict:
    """The STAGED marker `publish` reads: the file list, counts, verdict and QA (the manifest carries
    the sign-off's digest, so a signature covers it)."""
    qa = {"reasons": list(verdict.reasons), "findings_by_check": verdict.findings_by_check}
    if signoff is not None:
        qa["signoff_content_sha256"] = orjson.loads(signoff).get("content_sha256")
    return {
        "files": dict(sorted(listing.items())),
        "counts": counts.to_dict(),
        "verdict": verdict.verdict,
        "qa": qa,
        "staged_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def mark_staged(
    release: ObjectStore,
    prefix: str,
    counts: Counts,
    verdict: Verdict,
    listing: dict[str, dict],
    signoff: bytes | None = None,
) -> dict:
    """Make the staged files durable, then write the STAGED marker: the staging area is complete,
    and a killed run resumes from it."""
    if isinstance(release, LocalStore):
        release.sync()
    marker = staged_marker(listing, counts, verdict, signoff)
    release.put(join_key(prefix, STAGED), orjson.dumps(marker, option=orjson.OPT_SORT_KEYS))
    return marker


def stage_plan(
    plan: ReleasePlan, *, release: ObjectStore, source: ObjectStore, prefix: str, shard_size: int = 1000
) -> dict:
    """Stage a whole plan under `prefix` in this process, as the flow's tasks do shard by shard:
    the global files, each shard's images (checked against ingest's hash: SourceChanged) and
    label files, then the STAGED marker, which it returns."""
    files, shards = split_plan(plan, shard_size)
    listing = stage_files(release, prefix, files)
    for shard in shards:
        listing |= stage_copies(release, source, prefix, shard.copies)
        listing |= stage_files(release, prefix, shard.files)
    return mark_staged(release, prefix, plan.counts, plan.verdict, listing, plan.files.get(SIGNOFF))
