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

from kpdeliver.release.archive import ensure_archive
from kpdeliver.release.layout import MANIFEST, archive_key, client_key, read_manifest
from kpdeliver.release.signing import SIGNATURE, PublicKeys, signer_key_file
from kpdeliver.release.verify import Problem, check_release
from kpdeliver.storage import ObjectStore, StorageError, join_key
from kpdeliver.words import plural

REPORT = "qa/report.html"
_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile("".join(rf"(?:(\d+){u})?" for u in _UNITS))


def parse_duration(text: str, *, minimum: int = 1) -> int:
    """Seconds in '7d', '12h', '1d12h', '90m', '3600s' or '3600': units largest first, each once,
    no other characters, at least `minimum`. Anything else is a ValueError saying what to write."""
    text = text.strip()
    m = _DURATION.fullmatch(text)
    if text.isdigit():
        seconds = int(text)
    elif text and m:
        seconds = sum(int(n) * _UNITS[u] for n, u in zip(m.groups(), _UNITS, strict=True) if n)
    else:
        raise ValueError(f"cannot read duration {text!r}: write e.g. 7d, 12h, 1d12h, 30m or seconds")
    if seconds < minimum:
        raise ValueError(f"duration {text!r} is shorter than the least allowed here ({minimum} s)")
    return seconds


def expiry_problem(location: str, seconds: int) -> str | None:
    """Why links to `location` cannot live `seconds` (presigned S3 URLs live at most 7 days); None if they can."""
    if location.startswith("s3://"):
        from kpdeliver.storage.s3 import MAX_PRESIGN_SECONDS

        if seconds > MAX_PRESIGN_SECONDS:
            return (
                f"--expires {seconds} s is longer than S3 allows: presigned URLs live at most 7d "
                f"({MAX_PRESIGN_SECONDS} s)"
            )
    return None


class UnverifiedRelease(StorageError):
    """The release differs from its manifest; it is not shared."""

    def __init__(self, location: str, problems: list[Problem]) -> None:
        super().__init__(
            f"{location} does not match its manifest ({plural(len(problems), 'problem')}); not sharing it"
        )
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
    report: str | None = None  # link to the release's QA report (qa/report.html)

    @property
    def archive_created(self) -> bool:
        return self.archive_state != "kept"


def share_links(
    store: ObjectStore, name: str, *, expires_seconds: int, public_key: PublicKeys = None
) -> Links:
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
    keys = [join_key(name, MANIFEST), key, join_key(name, REPORT)]
    client = client_key(name)
    if checked.signed_by and client is not None:
        key_file = signer_key_file(store, client, store.get(keys[0]), store.get(join_key(name, SIGNATURE)))
        keys += [key_file] if key_file else []
    presign = getattr(store, "presign", None)
    links = [presign(k, expires_seconds) if presign else Path(store.location(k)).as_uri() for k in keys]
    return Links(
        links[0],
        links[1],
        state,
        presign is not None,
        expires_seconds,
        links[3] if len(links) > 3 else None,
        checked.signed_by,
        links[2] if REPORT in manifest["files"] else None,
    )
