"""The release archive `<version>.zip`, beside the release folder: built from the release, and
checked against it member by member and byte for byte.

Members sit under a top folder named after the version: `v0007/manifest.json`, every file the
manifest lists, and for a signed release `v0007/manifest.sig` and `v0007/signing-key.pub`. The
archive is deterministic (fixed timestamps and modes, members in sorted order), so a rebuild of
the same release gives the same bytes and any byte changed in an archive is caught.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
import zlib
from pathlib import PurePosixPath
from typing import IO

from kpdeliver.progress import tracked
from kpdeliver.release.layout import MANIFEST, client_key, sha256_hex
from kpdeliver.release.signing import PUBLIC_KEY, SIGNATURE, signer_key_file
from kpdeliver.storage import ObjectStore, StorageError, UnsafeKeyError, check_key, join_key

_STORED = (".jpg", ".jpeg", ".png", ".webp", ".parquet", ".zip")  # already compressed
_CHUNK = 1024 * 1024


def archive_members(store: ObjectStore, prefix: str, manifest: dict) -> dict[str, str]:
    """Member path (below the top folder) -> store key, for release `prefix`. Unsafe manifest paths
    raise UnsafeKeyError: they never become members."""
    members = {MANIFEST: join_key(prefix, MANIFEST)}
    members |= {check_key(p): join_key(prefix, p) for p in sorted(manifest["files"])}
    if manifest.get("signature") or store.exists(
        join_key(prefix, SIGNATURE)
    ):  # signed then, or later (`sign`)
        members[SIGNATURE] = join_key(prefix, SIGNATURE)
        client = client_key(prefix)
        key_file = (
            signer_key_file(store, client, store.get(members[MANIFEST]), store.get(members[SIGNATURE]))
            if client is not None and store.exists(members[SIGNATURE])
            else None
        )
        if key_file is not None:  # the key that signed this release, also after a rotation
            members[PUBLIC_KEY] = key_file
    return members


def write_archive(store: ObjectStore, prefix: str, manifest: dict, out: IO[bytes]) -> None:
    """Zip the release under a top folder named after it, streaming members."""
    top = PurePosixPath(prefix).name
    with zipfile.ZipFile(out, "w") as zf:
        for path, key in tracked("archive", archive_members(store, prefix, manifest).items()):
            info = zipfile.ZipInfo(f"{top}/{path}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = (
                zipfile.ZIP_STORED if PurePosixPath(path).suffix.lower() in _STORED else zipfile.ZIP_DEFLATED
            )
            info.external_attr = 0o644 << 16
            with store.open(key) as src, zf.open(info, "w", force_zip64=True) as dst:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    dst.write(chunk)


def build_archive(store: ObjectStore, prefix: str, manifest: dict) -> tempfile.SpooledTemporaryFile[bytes]:
    """The archive of release `prefix`, rewound, in a temporary file the caller closes."""
    tmp = tempfile.SpooledTemporaryFile(max_size=64 * _CHUNK)  # noqa: SIM115 (returned open)
    write_archive(store, prefix, manifest, tmp)
    tmp.seek(0)
    return tmp


def _digest(fh: IO[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        h.update(chunk)
    return h.hexdigest()


def unsafe_member(name: str, top: str) -> str | None:
    """Why archive member `name` must never be handed out (None when it is a plain path below `top/`)."""
    try:
        check_key(name)
    except UnsafeKeyError as e:
        return str(e)
    if not name.startswith(top + "/"):
        return f"member {name!r} is not inside the archive's top folder {top}/"
    return None


def archive_differences(
    store: ObjectStore, prefix: str, manifest: dict, archive_key: str
) -> list[tuple[str, str]]:
    """(member or archive name, what differs) between the archive at `archive_key` and release
    `prefix`; empty when the archive is exactly the one `write_archive` builds from the release."""
    top, name = PurePosixPath(prefix).name, PurePosixPath(archive_key).name
    expected = archive_members(store, prefix, manifest)
    with tempfile.SpooledTemporaryFile(max_size=64 * _CHUNK) as held:
        with store.open(archive_key) as src:  # zip needs to seek; S3 bodies cannot
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                held.write(chunk)
        held.seek(0)
        found = []
        try:
            with zipfile.ZipFile(held) as zf:
                names = zf.namelist()
                for member in names:
                    why = unsafe_member(member, top)
                    path = member[len(top) + 1 :]
                    if why:
                        found.append((member, f"unsafe member name: {why}"))
                    elif path not in expected:
                        found.append((member, "is not a file of the release"))
                    else:
                        with zf.open(member) as fh, store.open(expected[path]) as want:
                            if _digest(fh) != _digest(want):
                                found.append((member, "differs from the release's file"))
                found += [
                    (f"{top}/{p}", "missing from the archive") for p in expected if f"{top}/{p}" not in names
                ]
        except StorageError:
            raise
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            zlib.error,
            OSError,
            EOFError,
            ValueError,
            RuntimeError,
            NotImplementedError,
        ) as e:  # whatever a damaged zip makes the reader raise
            return [(name, f"is not a readable zip archive ({type(e).__name__}: {e})")]
        if found:
            return found
        held.seek(0)
        have = _digest(held)
    with build_archive(store, prefix, manifest) as rebuilt:
        if _digest(rebuilt) != have:
            return [
                (
                    name,
                    "its bytes differ from the archive of this release (members match: zip metadata changed)",
                )
            ]
    return []


def ensure_archive(store: ObjectStore, prefix: str, manifest: dict, key: str) -> str:
    """Write the archive of a verified release at `key`: 'built' (none was there), 'kept' (the one
    there is byte for byte the release's) or 'replaced' (the one there was not: planted or damaged)."""
    with build_archive(store, prefix, manifest) as tmp:
        data = tmp.read()
    if store.put_if_absent(key, data):
        return "built"
    try:
        if store.sha256(key) == sha256_hex(data):
            return "kept"
    except StorageError:
        pass
    store.put(key, data)
    return "replaced"
