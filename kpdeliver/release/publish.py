"""Publish a release plan atomically, on a folder or on S3, under `<releases>/<client>/<dataset>/v<NNNN>/`.

1. every file is staged (`release/stage.py`) under `.staging/<client>/<dataset>/<fingerprint>/<run>/` (one folder per
   run, so twin runs never write into each other's), then a `STAGED` marker listing them; a
   killed run's complete staging folder is resumed from by the next run of the same inputs;
2. the inputs are claimed with a conditional put of `<client>/<dataset>/.claims/fp-<fingerprint>`
   naming the staging folder (and the manifest fields) to publish from. Whoever loses reads the
   winner's claim and from then on acts on the winner's behalf: every run of these inputs
   copies the same staged bytes and builds the same manifest, so twins, and a run resuming a
   killed one, can all complete the release together and there is exactly one;
3. a version is claimed with a conditional put of `<client>/<dataset>/.claims/v<NNNN>` holding
   the fingerprint; a claim holding our fingerprint is ours, a foreign one moves us on to the
   next number, so every run of the same inputs lands on the same version (claims are never
   deleted); the version is then recorded in the fingerprint's claim;
4. the staged files are brought into `v<NNNN>/`: on a local folder the claimed staging folder
   becomes it in one rename (its STAGED marker, the resume point, is removed once the manifest
   is written), elsewhere each file is copied (server-side on S3); the signature `manifest.sig`
   is written when a key is given, and `v<NNNN>/manifest.json` last, with a conditional put.
   Only then is the version visible: readers list versions by their manifests, so a run that
   dies earlier leaves no visible release, and a version, once it has a manifest, is never
   written again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kpdeliver import __version__
from kpdeliver.config import ClientConfig
from kpdeliver.errors import ReleaseError
from kpdeliver.release.layout import (
    CLAIMS,
    MANIFEST,
    STAGED,
    STAGING,
    Manifest,
    manifest_version,
    read_manifest,
    release_prefix,
    sha256_hex,
    version_folder,
    version_number,
)
from kpdeliver.release.signing import PUBLIC_KEY, SIGNATURE, key_id, publish_public_key, sign
from kpdeliver.storage import ObjectStore, StorageError, join_key


class PublishError(ReleaseError, RuntimeError):
    """Publication could not complete; nothing partial is visible."""


def input_fingerprint(config: ClientConfig, image_shas: list[str], export_shas: dict[str, str]) -> str:
    """What makes two runs the same delivery: config, image bytes, export bytes, code version."""
    settings = config.model_dump(
        mode="json", exclude={"source", "releases", "storage", "runner", "signing_key_secret"}
    )
    settings["schema_"] = settings.pop("schema_name")  # the key fingerprints have always used
    doc = {
        "config": settings,
        "images": sorted(image_shas),
        "exports": sorted(export_shas.items()),
        "kpdeliver": __version__,
    }
    return sha256_hex(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))


def new_run_id() -> str:
    """Names one run's staging folder: sortable by start time, unique among twins."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)


def staging_root(client: str, dataset: str, fingerprint: str) -> str:
    """Where every run of these inputs stages, each in its own folder."""
    return join_key(STAGING, client, dataset, fingerprint[:24])


def staging_prefix(client: str, dataset: str, fingerprint: str, run: str | None = None) -> str:
    return join_key(staging_root(client, dataset, fingerprint), run or new_run_id())


@dataclass(frozen=True)
class ReleaseKey:
    """The release a run builds: a client's dataset and the fingerprint of the run's inputs."""

    client: str
    dataset: str
    fingerprint: str
    run: str = field(default_factory=new_run_id)  # this run's own staging folder

    @property
    def staging(self) -> str:
        return staging_prefix(self.client, self.dataset, self.fingerprint, self.run)


def fingerprint_claim(client: str, dataset: str, fingerprint: str) -> str:
    return join_key(client, dataset, CLAIMS, f"fp-{fingerprint}")


def read_staged(store: ObjectStore, prefix: str) -> dict | None:
    """The STAGED marker of a staging folder, or None when there is none (read first, asked after:
    a twin that published these inputs may remove the folder at any moment)."""
    key = join_key(prefix, STAGED)
    try:
        return orjson.loads(store.get(key))
    except StorageError:
        if not store.exists(key):
            return None
    return orjson.loads(store.get(key))  # it appeared meanwhile: a twin's rename brought it


def find_staged(
    store: ObjectStore, client: str, dataset: str, fingerprint: str, prefer: str | None = None
) -> str | None:
    """A complete staging folder of these inputs (`prefer` if complete, else the oldest run's), or None."""
    if prefer and read_staged(store, prefer) is not None:
        return prefer
    root = staging_root(client, dataset, fingerprint) + "/"
    for key in store.list(root):
        folder, _, name = key[len(root) :].partition("/")
        if name == STAGED:
            return root + folder
    moved = _claimed_release(store, client, dataset, fingerprint)
    return moved if moved is not None and read_staged(store, moved) is not None else None


def _claimed_release(store: ObjectStore, client: str, dataset: str, fingerprint: str) -> str | None:
    """The release folder of the version these inputs' claim records, if it records one."""
    try:
        version = orjson.loads(store.get(fingerprint_claim(client, dataset, fingerprint))).get("version")
    except StorageError:
        return None
    return release_prefix(client, dataset, version) if isinstance(version, int) else None


def published_versions(store: ObjectStore, client: str, dataset: str) -> list[int]:
    base = join_key(client, dataset) + "/"
    found = (manifest_version(key[len(base) :]) for key in store.list(base))
    return sorted(v for v in found if v is not None)


def find_duplicate(store: ObjectStore, client: str, dataset: str, fingerprint: str) -> int | None:
    """The published version built from exactly these inputs, if any (newest first)."""
    for v in reversed(published_versions(store, client, dataset)):
        if Manifest.of(read_manifest(store, release_prefix(client, dataset, v))).fingerprint == fingerprint:
            return v
    return None


@dataclass
class Published:
    version: int
    prefix: str  # release folder key, relative to the release store root
    location: str  # full URL or path
    manifest: dict
    resumed: bool = False  # completed from another run's staging (a killed run's, or a twin's)


def _claim_inputs(store: ObjectStore, key: str, mine: dict) -> dict:
    """The claim on these inputs: ours if the conditional put wins, else the winner's."""
    store.put_if_absent(key, orjson.dumps(mine, option=orjson.OPT_SORT_KEYS))
    # read back either way: a lost S3 response makes our own write read as taken
    return orjson.loads(store.get(key))


def _claim_version(
    store: ObjectStore, client: str, dataset: str, fingerprint: str, max_attempts: int
) -> tuple[int, bool]:
    """(version, whether it was already claimed for these inputs before this call)."""
    claims = join_key(client, dataset, CLAIMS)
    taken = published_versions(store, client, dataset)
    claimed = sorted(
        v for v in (version_number(k.rsplit("/", 1)[-1]) for k in store.list(claims + "/")) if v is not None
    )
    ours = [v for v in claimed if store.get(join_key(claims, version_folder(v))).decode() == fingerprint]
    version = ours[0] if ours else max(taken + claimed + [0]) + 1
    for _ in range(max_attempts):
        claim_key = join_key(claims, version_folder(version))
        if (
            store.put_if_absent(claim_key, fingerprint.encode())
            or store.get(claim_key).decode() == fingerprint
        ):
            return version, bool(ours)
        version += 1
    raise PublishError(f"could not claim a version for {client}/{dataset} after {max_attempts} attempts")


def _already_published(store: ObjectStore, prefix: str, fingerprint: str) -> dict | None:
    if not store.exists(join_key(prefix, MANIFEST)):
        return None
    manifest = read_manifest(store, prefix)
    if (found := Manifest.of(manifest).fingerprint) != fingerprint:
        raise PublishError(
            f"{store.location(prefix)} was claimed for inputs {fingerprint[:12]}… but holds "
            f"the release of {str(found)[:12]}…"
        )
    return manifest


def publish(
    *,
    store: ObjectStore,
    client: str,
    dataset: str,
    fingerprint: str,
    staged_prefix: str,
    manifest_fields: dict,
    signing_key: Ed25519PrivateKey | None = None,
    max_attempts: int = 50,
) -> Published:
    """Claim these inputs and a version, copy the staged files in, sign, write the manifest last.

    Returns the one release of `fingerprint`, whichever run of these inputs completed it."""
    if read_staged(store, staged_prefix) is None:
        # a twin of these inputs that published first removes every run's staging folder
        return _published_by_twin(store, client, dataset, fingerprint, staged_prefix)
    signer = key_id(signing_key) if signing_key else None
    claim_key = fingerprint_claim(client, dataset, fingerprint)
    claim = _claim_inputs(
        store, claim_key, {"staging": staged_prefix, "fields": manifest_fields, "key_id": signer}
    )
    version, reclaimed = _claim_version(store, client, dataset, fingerprint, max_attempts)
    if claim.get("version") != version:  # every run of these inputs records the same number
        claim = {**claim, "version": version}
        store.put(claim_key, orjson.dumps(claim, option=orjson.OPT_SORT_KEYS))
    prefix = release_prefix(client, dataset, version)

    def done(manifest: dict) -> Published:
        return Published(
            version,
            prefix,
            store.location(prefix),
            manifest,
            resumed=reclaimed or claim["staging"] != staged_prefix,
        )

    if (existing := _already_published(store, prefix, fingerprint)) is not None:
        return done(existing)
    _check_same_signer(claim, signer, client, dataset, version)
    try:
        marker = _bring_staged(store, claim["staging"], prefix)
    except (StorageError, PublishError):
        # a twin may have published and cleaned its staging meanwhile
        if (existing := _already_published(store, prefix, fingerprint)) is not None:
            return done(existing)
        raise
    manifest = _manifest(client, dataset, version, fingerprint, claim=claim, marker=marker, signer=signer)
    written = _sign_and_write(
        store, client, prefix, manifest, fingerprint=fingerprint, signing_key=signing_key
    )
    remove_moved_marker(store, prefix)
    return done(written)


def _published_by_twin(
    store: ObjectStore, client: str, dataset: str, fingerprint: str, staged_prefix: str
) -> Published:
    """The release a twin run published from these inputs, whose staging folder (ours too) it removed."""
    if (version := find_duplicate(store, client, dataset, fingerprint)) is not None:
        prefix = release_prefix(client, dataset, version)
        return Published(version, prefix, store.location(prefix), read_manifest(store, prefix), resumed=True)
    raise PublishError(f"nothing staged at {store.location(staged_prefix)}")


def _check_same_signer(claim: dict, signer: str | None, client: str, dataset: str, version: int) -> None:
    """Every run of these inputs must sign with the key of the run that claimed them (or none)."""
    if claim.get("key_id") != signer:
        raise PublishError(
            f"{client}/{dataset} v{version:04d} (these inputs) is being published "
            f"{'signed by key ' + claim['key_id'] if claim.get('key_id') else 'unsigned'}, but this run "
            f"{'signs with key ' + signer if signer else 'has no signing key'}; configure the same key"
        )


def _bring_staged(store: ObjectStore, staging: str, prefix: str) -> dict:
    """Bring the claimed staging folder's files into the release folder; its STAGED marker.

    Where the store can (a local folder), the whole staging folder becomes the release folder in
    one rename, its STAGED marker with it, which stays the resume point until the manifest is
    written; a run of these inputs that finds the marker there (a twin, or the next run after a
    kill) goes on from it. Elsewhere (S3) each staged file is copied, server-side."""
    marker = read_staged(store, prefix) or _move_staged(store, staging, prefix)
    if marker is not None:
        _keep_only_staged(store, prefix, marker)  # every run that goes on from the moved folder
        return marker
    marker = read_staged(store, staging)
    if marker is None:
        raise PublishError(f"the staging folder {store.location(staging)} claimed for these inputs is gone")
    with store.holding_folders():
        for path in marker["files"]:  # the same staged bytes, whichever run copies them
            store.copy(join_key(staging, path), join_key(prefix, path))
    return marker


def _move_staged(store: ObjectStore, staging: str, prefix: str) -> dict | None:
    """The claimed folder's STAGED marker once it is at `prefix` (moved by us or a twin), else None."""
    marker = read_staged(store, staging)
    try:
        moved = marker is not None and store.move_folder(staging, prefix)
    except StorageError:  # gone meanwhile: a twin moved it
        moved = False
    return marker if moved else read_staged(store, prefix)


def _keep_only_staged(store: ObjectStore, prefix: str, marker: dict) -> None:
    """A moved folder holds exactly the files its STAGED marker lists: anything else (a stray file, a
    link) is removed, never published; a listed file gone missing stops the publication for good."""
    base = prefix + "/"
    present = {key[len(base) :] for key in store.list(base)}
    listed = set(marker["files"])
    ours = {STAGED, MANIFEST, SIGNATURE}  # the marker and what publication writes (a twin's, maybe)
    for key in [base + p for p in sorted(present - listed - ours)] + [k for k, _ in store.skipped(base)]:
        store.delete(key)
    if missing := sorted(listed - present):
        store.delete(join_key(prefix, STAGED))  # never published incomplete, by this run or a later one
        raise PublishError(
            f"{store.location(prefix)}: {len(missing)} staged files are missing (first {missing[0]}); "
            "nothing is published"
        )


def remove_moved_marker(store: ObjectStore, prefix: str) -> None:
    """Remove the STAGED marker a rename brought into a release folder, once its manifest is written
    (asked first: on S3 there is none, and the worker may delete only under `.staging/`)."""
    if store.exists(key := join_key(prefix, STAGED)):
        store.delete(key)


def _manifest(
    client: str,
    dataset: str,
    version: int,
    fingerprint: str,
    *,
    claim: dict,
    marker: dict,
    signer: str | None,
) -> dict:
    """The release's manifest: the claim's fields and the staged counts, verdict, QA and files."""
    manifest = {
        "kpdeliver": __version__,
        "client": client,
        "dataset": dataset,
        "version": version,
        "created_at": marker.get("staged_at") or datetime.now(UTC).isoformat(timespec="seconds"),
        "fingerprint": fingerprint,
        **claim.get("fields", {}),
        "counts": marker["counts"],
        "verdict": marker["verdict"],
        "qa": marker.get("qa", {}),
        "files": marker["files"],
    }
    if signer is not None:
        manifest["signature"] = {
            "algorithm": "Ed25519",
            "key_id": signer,
            "file": SIGNATURE,
            "public_key": PUBLIC_KEY,
        }
    return manifest


def _sign_and_write(
    store: ObjectStore,
    client: str,
    prefix: str,
    manifest: dict,
    *,
    fingerprint: str,
    signing_key: Ed25519PrivateKey | None,
) -> dict:
    """Sign the manifest, write it last if absent; the manifest that holds the release (ours or a twin's)."""
    body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
    if signing_key is not None:
        publish_public_key(
            store, client, signing_key
        )  # beside the catalogue, for clients; kept after a rotation
        # every run builds the same manifest bytes and Ed25519 is deterministic: the same signature
        store.put(join_key(prefix, SIGNATURE), sign(signing_key, body))
    if store.put_if_absent(join_key(prefix, MANIFEST), body):
        return manifest
    held = _already_published(store, prefix, fingerprint)
    if held is None:  # refused as present, then gone: someone is deleting releases under us
        raise PublishError(
            f"{store.location(join_key(prefix, MANIFEST))} was refused as already present but cannot be read"
        )
    return held


def clean_staging(store: ObjectStore, client: str, dataset: str, fingerprint: str) -> None:
    """Remove every run's staging folder of these inputs (once their release is published), and the
    STAGED marker a run killed just after writing the manifest left in the release folder."""
    store.delete_prefix(staging_root(client, dataset, fingerprint) + "/")
    released = _claimed_release(store, client, dataset, fingerprint)
    if released is not None and store.exists(join_key(released, MANIFEST)):
        remove_moved_marker(store, released)
