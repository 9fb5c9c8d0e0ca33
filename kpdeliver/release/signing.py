"""Ed25519 signatures of release manifests.

The vendor signs the exact bytes of `manifest.json` (written once, never re-serialised); the
manifest lists every file's sha256, the counts, the verdict and the sign-off's digest, so the
signature covers all of them. The signature is `manifest.sig` (64 raw bytes) beside it, and
the public key (PEM) is `<client>/signing-key.pub`, beside the catalogue.

The private key comes from the environment (`KPDELIVER_SIGNING_KEY`: a PEM;
`KPDELIVER_SIGNING_KEY_FILE`: a path to one) or is handed in by the caller (a Prefect Secret,
looked up in `tasks/`); it is never written anywhere nor put in a message.
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kpdeliver.errors import ReleaseError
from kpdeliver.release.layout import sha256_hex

SIGNATURE = "manifest.sig"
PUBLIC_KEY = "signing-key.pub"
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
