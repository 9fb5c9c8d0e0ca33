"""Ed25519 signatures of release manifests.

The vendor signs the exact bytes of `manifest.json` (written once, never re-serialised); the
manifest lists every file's sha256, the counts, the verdict and the sign-off's digest, so the
signature covers all of them. The signature is `manifest.sig` (64 raw bytes) beside it, and
the public key (PEM) is `<client>/signing-key.pub`, beside the catalogue: the key that signed
last. Every key that ever signed stays in `<client>/signing-keys/<key id>.pub`, so releases
signed before a rotation keep a published key.

The private key comes from the environment (`KPDELIVER_SIGNING_KEY`: a PEM;
`KPDELIVER_SIGNING_KEY_FILE`: a path to one) or is handed in by the caller (a Prefect Secret,
looked up in `tasks/`); it is never written anywhere nor put in a message.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kpdeliver.errors import ReleaseError
from kpdeliver.release.layout import sha256_hex
from kpdeliver.storage import ObjectStore, join_key

SIGNATURE = "manifest.sig"
PUBLIC_KEY = "signing-key.pub"
KEYS_FOLDER = "signing-keys"  # <client>/signing-keys/<key id>.pub: every key that ever signed
PublicKeys = (
    Ed25519PublicKey | Sequence[Ed25519PublicKey] | None
)  # one pinned key, several (a rotation), none
KEY_ENV, KEY_FILE_ENV = "KPDELIVER_SIGNING_KEY", "KPDELIVER_SIGNING_KEY_FILE"


class SigningKeyError(ReleaseError, ValueError):
    """A configured key cannot be used; the message never holds key material."""


def private_key_from_pem(pem: str | bytes, *, origin: str) -> Ed25519PrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{origin} does not hold an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{origin} holds a {type(key).__name__.lstrip('_')}, not an Ed25519 key")
    return key


def key_from_environment(environ=os.environ) -> Ed25519PrivateKey | None:
    """The signing key from KPDELIVER_SIGNING_KEY or KPDELIVER_SIGNING_KEY_FILE; None when neither is set."""
    if environ.get(KEY_ENV):
        return private_key_from_pem(environ[KEY_ENV], origin=KEY_ENV)
    if environ.get(KEY_FILE_ENV):
        path = Path(environ[KEY_FILE_ENV]).expanduser()
        try:
            data = path.read_bytes()
        except OSError as e:
            raise SigningKeyError(f"{KEY_FILE_ENV}: cannot read {path} ({e.strerror})") from None
        return private_key_from_pem(data, origin=f"{KEY_FILE_ENV} ({path})")
    return None


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """What a client pins and compares: sha256 of the 32 raw public key bytes, 64 hex digits
    (`openssl pkey -pubin -in signing-key.pub -outform DER | tail -c 32 | sha256sum` prints the same)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return sha256_hex(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """A short name of a key pair: the first 16 hex digits of its fingerprint."""
    return fingerprint(key)[:16]


def public_key_from_pem(pem: bytes, *, origin: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{origin} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{origin} is not an Ed25519 public key")
    return key


def sign(key: Ed25519PrivateKey, manifest_bytes: bytes) -> bytes:
    return key.sign(manifest_bytes)  # Ed25519 is deterministic: the same manifest, the same signature


def signature_holds(public: Ed25519PublicKey, manifest_bytes: bytes, signature: bytes) -> bool:
    try:
        public.verify(signature, manifest_bytes)
        return True
    except InvalidSignature:
        return False


def key_list(keys: PublicKeys) -> list[Ed25519PublicKey]:
    """The pinned keys as a list (none, one, or several across a rotation)."""
    if keys is None:
        return []
    return [keys] if isinstance(keys, Ed25519PublicKey) else list(keys)


def holding_key(
    keys: PublicKeys, data: bytes, signature: bytes, named: str | None = None
) -> Ed25519PublicKey | None:
    """The key among `keys` whose signature of `data` holds (the one `named` by key id first); None if none."""
    ordered = sorted(key_list(keys), key=lambda k: key_id(k) != named)
    return next((k for k in ordered if signature_holds(k, data, signature)), None)


def key_ids(keys: PublicKeys) -> str:
    return ", ".join(key_id(k) for k in key_list(keys)) or "none"


def published_key_files(store: ObjectStore, client: str) -> list[str]:
    """The keys of the public key files published in the client folder `client`: the current one first."""
    folder = join_key(client, KEYS_FOLDER) + "/"
    archived = sorted(k for k in store.list(folder) if k.endswith(".pub") and "/" not in k[len(folder) :])
    current = join_key(client, PUBLIC_KEY)
    return ([current] if store.exists(current) else []) + archived


def published_keys(store: ObjectStore, client: str) -> list[Ed25519PublicKey]:
    """Every readable public key published in the client's folder (`published_key_problems` names the others)."""
    return [key for key, _ in _read_published(store, client) if key is not None]


def published_key_problems(store: ObjectStore, client: str) -> list[tuple[str, str]]:
    """(file, what is wrong) for each published key file that is damaged or inconsistent: one that
    is no Ed25519 public key, a `signing-keys/<id>.pub` holding another key, a `signing-key.pub`
    that is none of the keys kept under `signing-keys/`."""
    found = _read_published(store, client)
    problems = [
        (file, "is not a PEM Ed25519 public key: it was changed") for key, file in found if key is None
    ]
    kept = {}
    for key, file in found:
        if key is not None and file != join_key(client, PUBLIC_KEY):
            named = file.rsplit("/", 1)[-1].removesuffix(".pub")
            kept[key_id(key)] = key
            if named != key_id(key):
                problems.append((file, f"holds key {key_id(key)}, not the key {named} it is named after"))
    current = next((key for key, file in found if file == join_key(client, PUBLIC_KEY)), None)
    if current is not None and kept and key_id(current) not in kept:
        problems.append(
            (
                join_key(client, PUBLIC_KEY),
                f"holds key {key_id(current)}, none of the keys kept under {KEYS_FOLDER}/: it was swapped",
            )
        )
    return problems


def _read_published(store: ObjectStore, client: str) -> list[tuple[Ed25519PublicKey | None, str]]:
    out: list[tuple[Ed25519PublicKey | None, str]] = []
    for file in published_key_files(store, client):
        try:
            out.append((public_key_from_pem(store.get(file), origin=store.location(file)), file))
        except SigningKeyError:
            out.append((None, file))
    return out


def publish_public_key(store: ObjectStore, client: str, key: Ed25519PrivateKey) -> None:
    """The key beside the catalogue (`signing-key.pub`, the newest) and kept for good under `signing-keys/`."""
    store.put(join_key(client, KEYS_FOLDER, f"{key_id(key)}.pub"), public_pem(key))
    store.put(join_key(client, PUBLIC_KEY), public_pem(key))


def signer_key_file(store: ObjectStore, client: str, manifest_bytes: bytes, signature: bytes) -> str | None:
    """The published public key file whose key the release's signature holds with (None when none does)."""
    for file in published_key_files(store, client):
        try:
            if signature_holds(public_key_from_pem(store.get(file), origin=file), manifest_bytes, signature):
                return file
        except SigningKeyError:
            continue
    return None
