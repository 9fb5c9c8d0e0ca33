"""Delivery links for a published release.

The archive `<version>.zip` sits beside the release folder (`.../<dataset>/v0007.zip`), never
inside it: a published folder is immutable and holds exactly what its manifest lists. It is
built once, only from a release that verifies, with fixed timestamps so the same release always
gives the same bytes, and written with a conditional put, so it is never replaced.
"""
from __future__ import annotations

import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kpdeliver.progress import tracked
from kpdeliver.release.layout import MANIFEST, archive_key, read_manifest
from kpdeliver.release.verify import Problem, verify_release
from kpdeliver.storage import ObjectStore, StorageError

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_STORED = (".jpg", ".jpeg", ".png", ".webp", ".parquet", ".zip")  # already compressed
_CHUNK = 1024 * 1024


def parse_duration(text: str) -> int:
    """Seconds in '7d', '12h', '1d12h', '90m', '3600s' or '3600'."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    parts = re.findall(r"(\d+)\s*([wdhms])", text)
    if not parts or re.sub(r"\s+", "", text) != "".join(n + u for n, u in parts):
        raise ValueError(f"cannot read duration {text!r}: use e.g. 7d, 12h, 30m or seconds")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def write_archive(store: ObjectStore, name: str, manifest: dict, out) -> None:
    """Zip the manifest and every file it lists under a top folder `name/`, streaming members."""
    with zipfile.ZipFile(out, "w") as zf:
        for path in tracked("archive", [MANIFEST, *sorted(manifest["files"])]):
            info = zipfile.ZipInfo(f"{name}/{path}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if PurePosixPath(path).suffix.lower() in _STORED else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with store.open(f"{name}/{path}") as src, zf.open(info, "w", force_zip64=True) as dst:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    dst.write(chunk)


def ensure_archive(store: ObjectStore, name: str) -> tuple[str, bool]:
    """The archive's key beside release `name` in `store`, and whether this call created it."""
    key = archive_key(name)
    if store.exists(key):
        return key, False
    manifest = read_manifest(store, name)
    with tempfile.SpooledTemporaryFile(max_size=64 * _CHUNK) as tmp:
        write_archive(store, name, manifest, tmp)
        tmp.seek(0)
        created = store.put_if_absent(key, tmp.read())
    return key, created


class UnverifiedRelease(StorageError):
    """The release differs from its manifest; it is not shared."""

    def __init__(self, location: str, problems: list[Problem]) -> None:
        super().__init__(f"{location} does not match its manifest ({len(problems)} problems); not sharing it")
        self.problems = problems


@dataclass(frozen=True)
class Links:
    manifest: str
    archive: str
    archive_created: bool
    presigned: bool  # False: local paths, nothing to sign
    expires_seconds: int


def share_links(store: ObjectStore, name: str, *, expires_seconds: int) -> Links:
    """Links to release `name`'s manifest and archive (presigned on S3, file:// locally).

    The release is re-verified first; UnverifiedRelease lists the problems if it fails."""
    problems = verify_release(store, name)
    if problems:
        raise UnverifiedRelease(store.location(name), problems)
    key, created = ensure_archive(store, name)
    manifest_key = f"{name}/{MANIFEST}"
    presign = getattr(store, "presign", None)
    if presign is None:
        return Links(Path(store.location(manifest_key)).as_uri(), Path(store.location(key)).as_uri(),
                     created, False, expires_seconds)
    return Links(presign(manifest_key, expires_seconds), presign(key, expires_seconds), created, True, expires_seconds)
