"""Check a published release: every file the manifest lists present with the recorded size and
sha256 and nothing unlisted beside them; the Ed25519 signature of the manifest (when signed, or
when the caller expects it signed); the catalogue's record of the manifest's sha256; the sign-off
and the counts against the manifest; and the archive beside the release, when there is one.
Works on any ObjectStore (folder or S3); files are streamed, never held whole in memory.

A store that cannot be read at all (StoreUnreachable, no credentials, access denied) raises its
StorageError: that says nothing about the release."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import orjson

from kpdeliver.progress import tracked
from kpdeliver.release import binding, signing
from kpdeliver.release.archive import archive_differences
from kpdeliver.release.invariant import check_invariant
from kpdeliver.release.layout import (
    MANIFEST,
    SIGNOFF,
    archive_key,
    client_key,
    content_digest,
    read_manifest,
    sha256_hex,
)
from kpdeliver.storage import ObjectStore, StorageError, StoreUnreachable, UnsafeKeyError, check_key, join_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Problem:
    """One difference between a release and its manifest, signature, catalogue or sign-off."""

    kind: str  # manifest | missing | changed | extra | unreadable | signature | catalogue | signoff | counts | archive
    #          | invariant (release/invariant.py: a label lost, duplicated or swapped)
    path: str  # release-relative (or the archive's name)
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path} — {self.detail}"


@dataclass
class Verification:
    problems: list[Problem]
    signed_by: str | None = None  # key id whose signature held
    fingerprint: str | None = None  # that key's sha256 (what a client pins)
    pinned: bool = False  # the key was given (--public-key), not taken from the release's own folder
    notes: list[str] = field(default_factory=list)  # what was and was not checked, in plain words


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
    except StoreUnreachable:
        raise
    except StorageError as e:
        return Problem("unreadable", path, str(e))
    want_sha, want_size = meta.get("sha256"), meta.get("size")
    if sha != want_sha or (want_size is not None and size != want_size):
        return Problem(
            "changed",
            path,
            f"sha256 {sha[:16]}… ({size} bytes) but the manifest records "
            f"{str(want_sha)[:16]}… ({want_size} bytes)",
        )
    return None


def _files(store: ObjectStore, prefix: str, files: dict, workers: int) -> list[Problem]:
    base = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    present = {k[len(base) :] for k in store.list(base)}
    problems, safe = [], []
    for path in files:
        try:
            safe.append(check_key(path))
        except UnsafeKeyError as e:
            problems.append(Problem("manifest", path, f"the manifest lists an unsafe path: {e}"))
    listed = [p for p in safe if p in present]
    problems += [Problem("missing", p, "listed in the manifest but absent") for p in safe if p not in present]
    problems += [
        Problem("extra", p, "present but not listed in the manifest")
        for p in present - set(files) - {MANIFEST, signing.SIGNATURE}
    ]
    with ThreadPoolExecutor(max_workers=workers) as pool:  # I/O bound: overlap the reads
        checked = pool.map(lambda p: _check_file(store, prefix, p, files[p]), listed)
        problems += [p for p in tracked("verify", checked, total=len(listed)) if p]
    return problems


def _signature(
    store: ObjectStore,
    prefix: str,
    manifest: dict,
    raw: bytes,
    public_key: signing.PublicKeys,
    catalogued_key: str | None,
    result: Verification,
) -> list[Problem]:
    sig_key = join_key(prefix, signing.SIGNATURE)
    recorded = (manifest.get("signature") or {}).get("key_id") or catalogued_key
    has_sig = store.exists(sig_key)
    keys, problems = _keys_to_check(store, prefix, public_key, bool(has_sig or recorded), result)
    if not (has_sig or recorded or keys):
        result.notes.append(
            "UNSIGNED release: it has no manifest.sig and no signing key is recorded for it; "
            "its integrity rests on the catalogue's manifest sha256 and the cross-checks"
        )
        return []
    if not has_sig:
        why = f"recorded as signed by key {recorded}" if recorded else "a public key was given"
        return [Problem("signature", signing.SIGNATURE, f"missing: the release is not signed ({why})")]
    if not keys:
        return [
            *problems,
            Problem("signature", signing.SIGNATURE, "no public key to check it with: pass --public-key FILE"),
        ]
    holder = signing.holding_key(keys, raw, store.get(sig_key), named=recorded)
    if holder is None:
        return [*problems, _not_verified(keys, recorded)]
    if catalogued_key and signing.key_id(holder) != catalogued_key:
        return [
            *problems,
            Problem(
                "signature",
                signing.SIGNATURE,
                f"is signed by key {signing.key_id(holder)}, but the catalogue recorded the "
                f"release as signed by key {catalogued_key}: re-signed by someone else",
            ),
        ]
    result.signed_by, result.fingerprint = signing.key_id(holder), signing.fingerprint(holder)
    return problems


def _keys_to_check(
    store: ObjectStore, prefix: str, public_key: signing.PublicKeys, wanted: bool, result: Verification
) -> tuple[list[Ed25519PublicKey], list[Problem]]:
    """The keys to check the signature with: the pinned ones, else (when a signature is `wanted`)
    the client's published keys, noted as not pinned; with the problems of those published keys."""
    client = client_key(prefix)
    keys, problems = signing.key_list(public_key), []
    if not keys and wanted and client is not None:
        keys = signing.published_keys(store, client)
        problems = [
            Problem("signature", file[len(client) :].lstrip("/"), detail)
            for file, detail in signing.published_key_problems(store, client)
        ]
        if keys:
            result.notes.append(
                f"public key NOT pinned: taken from {store.location(client or '.')}, beside the "
                "release; this proves nothing against a swapped signing-key.pub (pass "
                "--public-key with the vendor's key)"
            )
    return keys, problems


def _not_verified(keys: list[Ed25519PublicKey], recorded: str | None) -> Problem:
    """The problem of a signature that verifies with none of `keys`."""
    return Problem(
        "signature",
        signing.SIGNATURE,
        f"does not verify with key {signing.key_ids(keys)}: manifest.json or manifest.sig "
        "was changed"
        + (
            f" (the manifest names key {recorded})"
            if recorded and recorded not in signing.key_ids(keys)
            else ""
        ),
    )


def _count_problems(counts: dict) -> tuple[list[Problem], dict]:
    """The manifest's counts that do not add up, and the counts as numbers ({} when they are not)."""
    problems = []

    try:
        c = {k: int(v) for k, v in counts.items() if k != "splits"}
        splits = sum(int(v) for v in (counts.get("splits") or {}).values())
        if splits != c["images_delivered"]:
            problems.append(
                Problem(
                    "counts",
                    MANIFEST,
                    f"splits add up to {splits} images but images_delivered is {c['images_delivered']}",
                )
            )
        if (
            c["images_delivered"] + c["images_quarantined"] + c["images_rejected_at_ingest"]
            != c["images_listed"]
        ):
            problems.append(
                Problem(
                    "counts",
                    MANIFEST,
                    "images delivered + quarantined + rejected at ingest "
                    f"differ from images_listed ({c['images_listed']})",
                )
            )
        if (
            c["instances_delivered"] + c["instances_quarantined"] + c["instances_review_only"]
            != c["instances_in"]
        ):
            problems.append(
                Problem(
                    "counts",
                    MANIFEST,
                    "instances delivered + quarantined + review-only "
                    f"differ from instances_in ({c['instances_in']})",
                )
            )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        problems.append(Problem("counts", MANIFEST, f"the counts are incomplete or not numbers ({e})"))
        c = {}
    return problems, c


def _signoff(store: ObjectStore, prefix: str, manifest: dict) -> list[Problem]:
    """The sign-off and the counts, against the manifest and each other (what a signature would cover)."""
    counts, qa = manifest.get("counts") or {}, manifest.get("qa") or {}
    problems, c = _count_problems(counts)
    if SIGNOFF not in manifest["files"]:
        return problems
    try:
        signoff = orjson.loads(store.get(join_key(prefix, SIGNOFF)))
    except (StorageError, orjson.JSONDecodeError) as e:
        return [*problems, Problem("signoff", SIGNOFF, f"cannot be read as JSON ({e})")]
    if not isinstance(signoff, dict):
        return [*problems, Problem("signoff", SIGNOFF, "is not a JSON object")]
    for what, said, want in _signoff_pairs(signoff, manifest, qa, c):
        if want is not None and said != want:
            problems.append(Problem("signoff", SIGNOFF, f"{what} {said!r} but the manifest records {want!r}"))
    digest = content_digest({p: m.get("sha256") for p, m in manifest["files"].items()})
    if signoff.get("content_sha256") != digest:
        problems.append(
            Problem("signoff", SIGNOFF, "its content digest does not match the files the manifest lists")
        )
    if qa.get("signoff_content_sha256") not in (None, signoff.get("content_sha256")):
        problems.append(
            Problem("signoff", SIGNOFF, "its content digest differs from the one the manifest records")
        )
    return problems


def _signoff_pairs(signoff: dict, manifest: dict, qa: dict, c: dict) -> list[tuple[str, object, object]]:
    """(what, the sign-off's value, the manifest's value) for each figure both record."""
    pairs = [
        ("verdict", signoff.get("verdict"), manifest.get("verdict")),
        ("reasons", signoff.get("reasons"), qa.get("reasons")),
        ("findings by check", signoff.get("findings_by_check"), qa.get("findings_by_check")),
    ]
    rules = signoff["rules"] if isinstance(signoff.get("rules"), list) else []
    measured = {
        r.get("rule"): r.get("measured") for r in rules if isinstance(r, dict) and r.get("subject") is None
    }
    if c:
        if "max_error_findings" in measured:  # a rule switched off (null) is not judged, nor listed
            pairs.append(
                (
                    "delivered error findings",
                    measured["max_error_findings"],
                    c.get("delivered_error_findings"),
                )
            )
        if "max_quarantined_fraction" in measured:
            pairs.append(
                (
                    "quarantined fraction",
                    measured["max_quarantined_fraction"],
                    round(c.get("instances_quarantined", 0) / max(c.get("instances_in", 0), 1), 6),
                )
            )
        by_check = signoff.get("findings_by_check") or {}
        n_findings = (
            sum(int(n) for sev in by_check.values() for n in sev.values())
            if isinstance(by_check, dict)
            else None
        )
        pairs.append(("number of findings", n_findings, c.get("findings")))
    return pairs


def check_release(
    store: ObjectStore,
    prefix: str = "",
    *,
    public_key: signing.PublicKeys = None,
    workers: int = 8,
    archive: bool = True,
) -> Verification:
    """Every problem of the release under `prefix` (sorted by path), what its signature says, and notes.
    `public_key`: the pinned key, or several (the old and new keys of a rotation: each signature,
    manifest and catalogue, must hold with one of them)."""
    result = Verification([], pinned=bool(signing.key_list(public_key)))
    store.exists(join_key(prefix, MANIFEST))  # a store that cannot be read at all raises: nothing was checked
    try:
        manifest = read_manifest(store, prefix)
        raw = store.get(join_key(prefix, MANIFEST))
    except StoreUnreachable:
        raise
    except StorageError as e:
        result.problems = [Problem("manifest", MANIFEST, str(e))]
        return result
    problems = _files(store, prefix, manifest["files"], workers)
    bound = binding.bind(
        store, prefix, manifest, public_key
    )  # the release's place, the catalogue's chain and row
    problems += [Problem(*p) for p in bound.problems]
    result.notes += bound.notes
    record = bound.record
    if record is not None and record[0] != sha256_hex(raw):
        problems.append(
            Problem(
                "manifest",
                MANIFEST,
                f"sha256 {sha256_hex(raw)[:16]}… but the catalogue recorded "
                f"{str(record[0])[:16]}… at publication: it was rewritten",
            )
        )
    try:
        problems += _signature(
            store, prefix, manifest, raw, public_key, record[1] if record else None, result
        )
    except signing.SigningKeyError as e:
        problems.append(Problem("signature", signing.PUBLIC_KEY, str(e)))
    problems += _signoff(store, prefix, manifest)
    problems += [
        Problem("invariant", path, detail) for path, detail in check_invariant(store, prefix, manifest)
    ]
    if archive:
        problems += _archive_problems(store, prefix, manifest)
    result.problems = sorted(problems, key=lambda p: (p.path, p.kind))
    return result


def _archive_problems(store: ObjectStore, prefix: str, manifest: dict) -> list[Problem]:
    """How the release's zip archive beside it (if there is one) differs from the release."""
    parent, name = prefix.rstrip("/").rpartition("/")[::2]
    zip_key = join_key(parent, archive_key(name))
    if not store.exists(zip_key):
        return []
    try:
        zip_name = PurePosixPath(zip_key).name
        return [
            Problem("archive", zip_name, detail if what == zip_name else f"member {what} {detail}")
            for what, detail in archive_differences(store, prefix, manifest, zip_key)
        ]
    except UnsafeKeyError:
        return []  # the manifest's unsafe paths are already problems
    except StoreUnreachable:
        raise
    except StorageError as e:
        return [Problem("archive", PurePosixPath(zip_key).name, f"cannot be checked ({e})")]


def verify_release(
    store: ObjectStore, prefix: str = "", *, workers: int = 8, public_key: signing.PublicKeys = None
) -> list[Problem]:
    """Every difference found by `check_release`; empty when the release is whole."""
    return check_release(store, prefix, public_key=public_key, workers=workers).problems
