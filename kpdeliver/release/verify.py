"""Check a published release against its manifest: every listed file present with the recorded
size and sha256, and nothing unlisted beside them. Works on any ObjectStore (folder or S3);
files are streamed, never held whole in memory."""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from kpdeliver.progress import tracked
from kpdeliver.release.layout import MANIFEST, read_manifest
from kpdeliver.storage import ObjectStore, StorageError, UnsafeKeyError, check_key, join_key

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Problem:
    """One difference between a release and its manifest."""

    kind: str  # manifest | missing | changed | extra | unreadable
    path: str  # release-relative
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path} — {self.detail}"


def file_digest(store: ObjectStore, key: str) -> tuple[str, int]:
    """(sha256 hex, size) of an object, streamed."""
    h, size = hashlib.sha256(), 0
    with store.open(key) as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _check_file(store: ObjectStore, prefix: str, path: str, meta: dict) -> Problem | None:
    try:
        sha, size = file_digest(store, join_key(prefix, path))
    except StorageError as e:
        return Problem("unreadable", path, str(e))
    want_sha, want_size = meta.get("sha256"), meta.get("size")
    if sha != want_sha or (want_size is not None and size != want_size):
        return Problem("changed", path, f"sha256 {sha[:16]}… ({size} bytes) but the manifest records "
                                        f"{str(want_sha)[:16]}… ({want_size} bytes)")
    return None


def verify_release(store: ObjectStore, prefix: str = "", *, workers: int = 8) -> list[Problem]:
    """Every difference between the release under `prefix` and its manifest, sorted by path.

    An empty list means every listed file was re-hashed and matched, and nothing else is there.
    """
    try:
        manifest = read_manifest(store, prefix)
    except StorageError as e:
        return [Problem("manifest", MANIFEST, str(e))]
    files: dict[str, dict] = manifest["files"]
    base = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    present = {k[len(base):] for k in store.list(base)}
    problems, safe = [], []
    for path in files:
        try:
            safe.append(check_key(path))
        except UnsafeKeyError as e:
            problems.append(Problem("manifest", path, f"the manifest lists an unsafe path: {e}"))
    listed = [p for p in safe if p in present]
    problems += [Problem("missing", p, "listed in the manifest but absent") for p in safe if p not in present]
    problems += [Problem("extra", p, "present but not listed in the manifest") for p in present - set(files) - {MANIFEST}]
    with ThreadPoolExecutor(max_workers=workers) as pool:  # I/O bound: overlap the reads
        checked = pool.map(lambda p: _check_file(store, prefix, p, files[p]), listed)
        problems += [p for p in tracked("verify", checked, total=len(listed)) if p]
    return sorted(problems, key=lambda p: (p.path, p.kind))
