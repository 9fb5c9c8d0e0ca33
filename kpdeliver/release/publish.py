"""Publish a release plan atomically, on a folder or on S3, under `<releases>/<client>/<dataset>/v<NNNN>/`.

1. every file is staged under `.staging/<client>/<dataset>/<fingerprint>/`, then a `STAGED`
   marker listing them is written; a killed run can resume from a complete staging area;
2. a version is claimed with a conditional put of `<client>/<dataset>/.claims/v<NNNN>`
   holding the run's fingerprint; a lost claim moves on to the next number;
3. staged files are copied (server-side on S3) into `v<NNNN>/`;
4. `v<NNNN>/manifest.json` is written with a conditional put. Only then is the version
   visible: readers list versions by their manifests, so a run that dies earlier leaves no
   visible release, and a version, once it has a manifest, is never written again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from kpdeliver import __version__
from kpdeliver.config import ClientConfig
from kpdeliver.release.layout import (
    CLAIMS, MANIFEST, STAGED, STAGING, manifest_version, read_manifest, release_prefix, sha256_hex, version_folder,
    version_number,
)
from kpdeliver.release.package import ReleasePlan
from kpdeliver.storage import ObjectStore, join_key


class PublishError(RuntimeError):
    """Publication could not complete; nothing partial is visible."""


def input_fingerprint(config: ClientConfig, image_shas: list[str], export_shas: dict[str, str]) -> str:
    """What makes two runs the same delivery: config, image bytes, export bytes, code version."""
    doc = {
        "config": config.model_dump(mode="json", exclude={"source", "releases", "storage", "runner"}),
        "images": sorted(image_shas),
        "exports": sorted(export_shas.items()),
        "kpdeliver": __version__,
    }
    return sha256_hex(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))


def staging_prefix(client: str, dataset: str, fingerprint: str) -> str:
    return join_key(STAGING, client, dataset, fingerprint[:24])


def stage(plan: ReleasePlan, *, release_store: ObjectStore, source_store: ObjectStore, prefix: str, progress=None) -> dict:
    """Write every file of the plan under `prefix`, then the STAGED marker (the file list)."""
    listing = {}
    for path, data in plan.files.items():
        release_store.put(join_key(prefix, path), data)
        listing[path] = {"size": len(data), "sha256": sha256_hex(data)}
        if progress:
            progress()
    for src_key, path, sha in plan.copies:
        dst = join_key(prefix, path)
        release_store.copy_from(source_store, src_key, dst)
        copied = release_store.sha256(dst)
        if copied != sha:  # the source changed after ingest hashed it: never publish other bytes
            raise PublishError(f"{source_store.location(src_key)} changed after ingest (sha256 {copied[:12]}… "
                               f"instead of {sha[:12]}…); run the delivery again to re-ingest it")
        listing[path] = {"size": release_store.size(dst), "sha256": sha}
        if progress:
            progress()
    marker = {"files": dict(sorted(listing.items())), "counts": plan.counts.to_dict(), "verdict": plan.verdict.verdict,
              "qa": {"reasons": list(plan.verdict.reasons), "findings_by_check": plan.verdict.findings_by_check}}
    release_store.put(join_key(prefix, STAGED), orjson.dumps(marker, option=orjson.OPT_SORT_KEYS))
    return marker


def read_staged(store: ObjectStore, prefix: str) -> dict | None:
    key = join_key(prefix, STAGED)
    return orjson.loads(store.get(key)) if store.exists(key) else None


def published_versions(store: ObjectStore, client: str, dataset: str) -> list[int]:
    base = join_key(client, dataset) + "/"
    found = (manifest_version(key[len(base):]) for key in store.list(base))
    return sorted(v for v in found if v is not None)


def find_duplicate(store: ObjectStore, client: str, dataset: str, fingerprint: str) -> int | None:
    """The published version built from exactly these inputs, if any (newest first)."""
    for v in reversed(published_versions(store, client, dataset)):
        if read_manifest(store, release_prefix(client, dataset, v)).get("fingerprint") == fingerprint:
            return v
    return None


@dataclass
class Published:
    version: int
    prefix: str  # release folder key, relative to the release store root
    location: str  # full URL or path
    manifest: dict
    resumed: bool = False


def publish(
    *, store: ObjectStore, client: str, dataset: str, fingerprint: str, staged_prefix: str, manifest_fields: dict,
    max_attempts: int = 50,
) -> Published:
    """Claim the next free version, copy the staged files in, write the manifest last."""
    marker = read_staged(store, staged_prefix)
    if marker is None:
        raise PublishError(f"nothing staged at {store.location(staged_prefix)}")
    claims = join_key(client, dataset, CLAIMS)
    taken = published_versions(store, client, dataset)
    claimed = sorted(v for v in (version_number(k.rsplit("/", 1)[-1]) for k in store.list(claims + "/")) if v is not None)
    # resume our own unfinished claim first (a run killed after claiming)
    candidates = [v for v in claimed
                  if v not in taken and store.get(join_key(claims, version_folder(v))).decode() == fingerprint]
    version = candidates[0] if candidates else max(taken + claimed + [0]) + 1
    for _ in range(max_attempts):
        claim_key = join_key(claims, version_folder(version))
        mine = store.put_if_absent(claim_key, fingerprint.encode()) or store.get(claim_key).decode() == fingerprint
        prefix = release_prefix(client, dataset, version)
        if mine and not store.exists(join_key(prefix, MANIFEST)):
            for path in marker["files"]:
                store.copy(join_key(staged_prefix, path), join_key(prefix, path))
            manifest = {
                "kpdeliver": __version__, "client": client, "dataset": dataset, "version": version,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "fingerprint": fingerprint, **manifest_fields,
                "counts": marker["counts"], "verdict": marker["verdict"], "qa": marker.get("qa", {}),
                "files": marker["files"],
            }
            body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
            if store.put_if_absent(join_key(prefix, MANIFEST), body):
                return Published(version, prefix, store.location(prefix), manifest, resumed=bool(candidates))
        if mine:
            existing = read_manifest(store, prefix)
            if existing.get("fingerprint") == fingerprint:  # a twin run of the same inputs won
                return Published(version, prefix, store.location(prefix), existing, resumed=True)
        version += 1
    raise PublishError(f"could not claim a version for {client}/{dataset} after {max_attempts} attempts")


def clean_staging(store: ObjectStore, prefix: str) -> None:
    store.delete_prefix(prefix + "/")
