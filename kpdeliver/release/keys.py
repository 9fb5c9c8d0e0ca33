"""Signing keys on the vendor's side: a new Ed25519 pair (`kpdeliver keys new`), and a published
unsigned release signed afterwards (`kpdeliver sign`).

A release signed later gets `manifest.sig` beside its manifest, which stays byte for byte as
published (its sha256 is what the catalogue recorded), the public key published in the client's
folder (`signing-key.pub`, and for good under `signing-keys/<key id>.pub`), and a new catalogue
generation naming the key, signed with it. An archive already shared beside it is rebuilt with the
signature and the key. A release already signed, or one that does not verify against its
manifest, is refused. Run again after an interruption, it completes what is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kpdeliver.release import catalog, signing
from kpdeliver.release.archive import ensure_archive
from kpdeliver.release.layout import MANIFEST, archive_key, read_manifest, version_number
from kpdeliver.release.verify import Problem, check_release
from kpdeliver.storage import ObjectStore, join_key

PRIVATE_SUFFIX, PUBLIC_SUFFIX = ".pem", ".pub"


class SignRefused(ValueError):
    """The release cannot be signed; the message is one sentence, `problems` what verify found."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    key_id: str
    fingerprint: str


@dataclass(frozen=True)
class Signed:
    location: str
    key_id: str
    fingerprint: str
    completed: bool  # True: an interrupted earlier `sign` with this key was finished


def new_key_pair(folder: Path, name: str = "signing-key") -> KeyPair:
    """Write `<name>.pem` (the private key, mode 0600, unencrypted PKCS#8) and `<name>.pub` into
    `folder`; FileExistsError when either exists (a key is never overwritten)."""
    key = Ed25519PrivateKey.generate()
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / f"{name}{PRIVATE_SUFFIX}", folder / f"{name}{PUBLIC_SUFFIX}"
    for path in (private, public):
        if path.exists() or path.is_symlink():
            raise FileExistsError(
                f"{path} exists: a key is never overwritten (choose another --out or --name)"
            )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(private, 0o600)  # whatever the umask
    with open(public, "xb") as fh:
        fh.write(signing.public_pem(key))
    return KeyPair(private, public, signing.key_id(key), signing.fingerprint(key))


def _recorded_key(store: ObjectStore, client: str, dataset: str, version: int) -> str | None:
    row = catalog.catalogued_row(store, client, dataset, version)
    return row.get("signing_key_id") if row else None


def sign_release(store: ObjectStore, prefix: str, key: Ed25519PrivateKey) -> Signed:
    """Sign the published release `prefix` ('<client>/<dataset>/v<NNNN>' from the releases root)."""
    client_key, dataset, folder = prefix.strip("/").rsplit("/", 2)
    version = version_number(folder)
    if version is None:
        raise SignRefused(f"{store.location(prefix)} is not a release folder (…/<client>/<dataset>/v<NNNN>)")
    manifest = read_manifest(store, prefix)  # StorageError naming it when it is no published release
    raw = store.get(join_key(prefix, MANIFEST))
    sig_key, me = join_key(prefix, signing.SIGNATURE), signing.key_id(key)
    where = store.location(prefix)
    if manifest.get("signature"):
        raise SignRefused(
            f"{where} was signed at publication (key {manifest['signature'].get('key_id')}): nothing to sign"
        )
    if store.exists(sig_key):
        mine = signing.signature_holds(key.public_key(), raw, store.get(sig_key))
        if not mine or _recorded_key(store, client_key, dataset, version) == me:
            raise SignRefused(
                f"{where} is already signed"
                + ("" if mine else " with another key")
                + " (manifest.sig exists): a signature is never replaced"
            )
        completed = True  # signed by this key before, the catalogue step was interrupted
    else:
        checked = check_release(store, prefix)
        if checked.problems:
            raise SignRefused(
                f"{where} does not verify against its manifest: not signing it", checked.problems
            )
        signing.publish_public_key(store, client_key, key)
        if not store.put_if_absent(sig_key, signing.sign(key, raw)):
            raise SignRefused(f"{where} was signed by someone else meanwhile (manifest.sig appeared)")
        completed = False
    signing.publish_public_key(store, client_key, key)
    archive = join_key(client_key, dataset, archive_key(folder))
    if store.exists(archive):  # a shared archive now lacks the signature: rebuilt with it and the key
        ensure_archive(store, prefix, manifest, archive)
    catalog.record_signature(
        store, client_key, dataset, version, key
    )  # last: a re-run finishes what is missing
    return Signed(where, me, signing.fingerprint(key), completed)
