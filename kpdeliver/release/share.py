"""Delivery links for a published release.

The archive `<version>.zip` sits beside the release folder (`.../<dataset>/v0007.zip`), never
inside it: a published folder is immutable and holds exactly what its manifest lists. `share`
hands it out only from a release that verifies, and rebuilds it every time: an archive found
there (planted, damaged, or from another build) is kept only when it is byte for byte the
release's, else replaced. Members with unsafe names are never written (archive.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kpdeliver.release.archive import ensure_archive
from kpdeliver.release.layout import MANIFEST, archive_key, client_key, read_manifest
from kpdeliver.release.signing import PUBLIC_KEY
from kpdeliver.release.verify import Problem, check_release
from kpdeliver.storage import ObjectStore, StorageError, join_key
from kpdeliver.words import plural

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in '7d', '12h', '1d12h', '90m', '3600s' or '3600'."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    parts = re.findall(r"(\d+)\s*([wdhms])", text)
    if not parts or re.sub(r"\s+", "", text) != "".join(n + u for n, u in parts):
        raise ValueError(f"cannot read duration {text!r}: use e.g. 7d, 12h, 30m or seconds")
    return sum(int(n) * _UNITS[u] for n, u in parts)


class UnverifiedRelease(StorageError):
    """The release differs from its manifest; it is not shared."""

    def __init__(self, location: str, problems: list[Problem]) -> None:
        super().__init__(f"{location} does not match its manifest ({plural(len(problems), 'problem')}); not sharing it")
        self.problems = problems


@dataclass(frozen=True)
class Links:
    manifest: str
    archive: str
    archive_state: str  # built | kept | replaced (archive.ensure_archive)
    presigned: bool  # False: local paths, nothing to sign
    expires_seconds: int
    public_key: str | None = None  # link to the vendor's public key, for a signed release
    signed_by: str | None = None

    @property
    def archive_created(self) -> bool:
        return self.archive_state != "kept"


def share_links(store: ObjectStore, name: str, *, expires_seconds: int,
                public_key: Ed25519PublicKey | None = None) -> Links:
    """Links to release `name`'s manifest and archive (presigned on S3, file:// locally).

    The release is re-verified first (its archive aside: that is rebuilt); UnverifiedRelease lists
    the problems if it fails."""
    checked = check_release(store, name, public_key=public_key, archive=False)
    if checked.problems:
        raise UnverifiedRelease(store.location(name), checked.problems)
    manifest = read_manifest(store, name)
    parent, _, folder = name.rstrip("/").rpartition("/")
    key = join_key(parent, archive_key(folder))
    state = ensure_archive(store, name, manifest, key)
    keys = [join_key(name, MANIFEST), key]
    client = client_key(name)
    if checked.signed_by and client is not None and store.exists(join_key(client, PUBLIC_KEY)):
        keys.append(join_key(client, PUBLIC_KEY))
    presign = getattr(store, "presign", None)
    links = [presign(k, expires_seconds) if presign else Path(store.location(k)).as_uri() for k in keys]
    return Links(links[0], links[1], state, presign is not None, expires_seconds,
                 links[2] if len(links) > 2 else None, checked.signed_by)
