"""The release layout that publication, verification and sharing all read (docs/release.md):

<releases>/<client>/catalog.parquet
<releases>/<client>/<dataset>/v<NNNN>/manifest.json   (and every file it lists)
<releases>/<client>/<dataset>/v<NNNN>.zip              (the shared archive, beside the folder)
<releases>/<client>/<dataset>/v<NNNN>/manifest.sig    (Ed25519 signature of manifest.json, when signed)
<releases>/<client>/signing-key.pub                    (the vendor's public key, PEM)
<releases>/<client>/signing-keys/<key id>.pub          (every key that ever signed, kept across rotations)
<releases>/<client>/<dataset>/.claims/v<NNNN>          (who claimed a version number)
<releases>/<client>/<dataset>/.claims/fp-<fingerprint> (which run publishes these inputs, and as which version)
<releases>/.staging/<client>/<dataset>/<fingerprint>/<run>/  (files before publication, STAGED marker)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kpdeliver.storage import ObjectStore, StorageError, join_key

MANIFEST = "manifest.json"
SIGNOFF = "qa/signoff.json"
STAGED = "STAGED"
CATALOG = "catalog.parquet"
CLAIMS = ".claims"
STAGING = ".staging"

_VERSION_FOLDER = re.compile(r"^v(\d{4,})$")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_digest(listing: dict[str, str]) -> str:
    """The sign-off's digest of a release: sha256 of {path: sha256} of every file but the sign-off."""
    return sha256_hex(
        orjson.dumps({p: sha for p, sha in listing.items() if p != SIGNOFF}, option=orjson.OPT_SORT_KEYS)
    )


def version_folder(version: int) -> str:
    """'v0007' for version 7."""
    return f"v{version:04d}"


def version_number(name: str) -> int | None:
    """7 for 'v0007'; None when `name` is not a version folder name."""
    m = _VERSION_FOLDER.match(name)
    return int(m.group(1)) if m else None


def release_prefix(client: str, dataset: str, version: int) -> str:
    """Key of a release folder, relative to the release store root."""
    return join_key(client, dataset, version_folder(version))


def manifest_version(relative_key: str) -> int | None:
    """The version whose manifest `relative_key` ('v0007/manifest.json', relative to a dataset) is."""
    folder, _, name = relative_key.partition("/")
    return version_number(folder) if name == MANIFEST else None


def read_manifest(store: ObjectStore, prefix: str = "") -> dict:
    """The manifest of the release folder `prefix`; StorageError naming it when absent or not a manifest."""
    key = join_key(prefix, MANIFEST)
    if not store.exists(key):
        raise StorageError(
            f"{store.location(key)} does not exist: not a published release (or not yet published)"
        )
    try:
        manifest = orjson.loads(store.get(key))
    except orjson.JSONDecodeError as e:
        raise StorageError(f"{store.location(key)} is not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise StorageError(f"{store.location(key)} has no 'files' mapping")
    return manifest


@dataclass(frozen=True)
class Manifest:
    """The fields of a release's manifest.json that kpdeliver reads back, typed (`doc`: the JSON as
    published and signed). A field that is missing, or not of its type, reads as None or empty."""

    doc: dict
    client: str | None
    dataset: str | None
    version: int | None
    fingerprint: str | None
    verdict: str | None
    created_at: str | None
    counts: dict[str, int]
    qa: dict[str, Any]
    files: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, doc: dict) -> Manifest:
        def text(key: str) -> str | None:
            return doc[key] if isinstance(doc.get(key), str) else None

        def mapping(key: str) -> dict:
            return doc[key] if isinstance(doc.get(key), dict) else {}

        version = doc.get("version")
        return cls(
            doc,
            text("client"),
            text("dataset"),
            version if isinstance(version, int) else None,
            text("fingerprint"),
            text("verdict"),
            text("created_at"),
            mapping("counts"),
            mapping("qa"),
            mapping("files"),
        )


def release_parent_and_name(location: str) -> tuple[str, str]:
    """('.../<dataset>', 'v0007') from the location of a release folder (URL or path)."""
    if "://" in location and not location.startswith("file://"):
        parent, _, name = location.rstrip("/").rpartition("/")
        return parent, name
    path = Path(location.removeprefix("file://")).expanduser().resolve()
    return str(path.parent), path.name


def release_client_and_key(location: str) -> tuple[str, str]:
    """('.../<client>', '<dataset>/v0007') from the location of a release folder: verify and share
    open the client's folder, where the catalogue and the public key live."""
    dataset_location, name = release_parent_and_name(location)
    client_location, dataset = release_parent_and_name(dataset_location)
    return client_location, f"{dataset}/{name}"


def client_key(prefix: str) -> str | None:
    """The client folder's key for release prefix '<...>/<client>/<dataset>/v0007' (None when the
    prefix does not reach up to the client)."""
    parts = [p for p in prefix.split("/") if p]
    return "/".join(parts[:-2]) if len(parts) >= 2 else None


def archive_key(name: str) -> str:
    """The shared archive of release folder `name`, beside it (never inside: a published folder is immutable)."""
    return f"{name}.zip"
