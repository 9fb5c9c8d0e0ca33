"""`kpdeliver keys new` (an Ed25519 signing key pair) and `kpdeliver sign RELEASE` (sign a release
published unsigned). Neither imports Prefect. Exit codes: 0 done, 1 the release was refused
(already signed, or it does not verify), 2 a wrong option, a key that cannot be used, or a store
that cannot be read."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from kpdeliver.cli.output import CONFIG, ENDPOINT, PROFILE, REGION, fail, store_options, unreachable_hint

app = typer.Typer()
keys_app = typer.Typer(help="Signing keys: `keys new` makes an Ed25519 pair.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console(soft_wrap=True, highlight=False, markup=False)
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)


@keys_app.command("new")
def new(
    out: Path = typer.Option(Path("."), "--out", help="folder for the two files (created when missing)"),
    name: str = typer.Option(
        "signing-key", "--name", help="file name stem: NAME.pem (private), NAME.pub (public)"
    ),
) -> None:
    """Write a new Ed25519 key pair: NAME.pem (private, mode 0600) and NAME.pub; never overwrites."""
    from kpdeliver.release.keys import new_key_pair

    if not name or "/" in name or name.startswith("."):
        fail(f"--name {name!r} must be a plain file name stem")
    try:
        pair = new_key_pair(out, name)
    except FileExistsError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write the key pair into {out}: {e.strerror or e}")
    console.print(
        f"private key: {pair.private} (mode 0600; keep it secret: KPDELIVER_SIGNING_KEY_FILE={pair.private})"
    )
    console.print(f"public key:  {pair.public}")
    console.print(
        f"fingerprint: sha256:{pair.fingerprint} (key id {pair.key_id}); give clients the public key "
        "and this fingerprint over a channel they trust"
    )


def _private_key(path: Path | None):
    from kpdeliver.release.signing import SigningKeyError, key_from_environment, private_key_from_pem

    try:
        if path is not None:
            return private_key_from_pem(path.read_bytes(), origin=str(path))
        key = key_from_environment()
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror or e}")
    except SigningKeyError as e:
        fail(str(e))
    if key is None:
        fail("no signing key: pass --key FILE, or set KPDELIVER_SIGNING_KEY_FILE or KPDELIVER_SIGNING_KEY")
    return key


@app.command()
def sign(
    release: str = typer.Argument(..., help="published release folder: local path or s3://bucket/.../v0007"),
    key: Path | None = typer.Option(
        None, "--key", help="private key PEM (default: KPDELIVER_SIGNING_KEY_FILE or KPDELIVER_SIGNING_KEY)"
    ),
    config: Path | None = CONFIG,
    endpoint_url: str | None = ENDPOINT,
    region: str | None = REGION,
    profile: str | None = PROFILE,
) -> None:
    """Sign a release published unsigned: add manifest.sig (the manifest unchanged), publish the public
    key beside the catalogue and record the signature in the catalogue. A signed release, or one that
    does not verify against its manifest, is refused (exit 1)."""
    from kpdeliver.release.keys import SignRefused, sign_release
    from kpdeliver.release.layout import release_client_and_key, release_parent_and_name
    from kpdeliver.storage import StorageError, StoreUnreachable, open_store

    private = _private_key(key)
    options = store_options(config, endpoint_url, region, profile)
    client_location, name = release_client_and_key(release)
    root, client = release_parent_and_name(client_location)
    try:
        store = open_store(root, options if root.startswith("s3://") else None)
        signed = sign_release(store, f"{client}/{name}", private)
    except SignRefused as e:
        err.print(f"refused: {e}")
        for p in e.problems:
            err.print(str(p))
        raise typer.Exit(1) from None
    except StoreUnreachable as e:
        fail(f"store unreachable: {e}; {unreachable_hint(options)}")
    except StorageError as e:
        fail(str(e))
    done = " (finished an interrupted signing)" if signed.completed else ""
    console.print(
        f"signed {signed.location} with key {signed.key_id}{done}: manifest.sig written, manifest unchanged, "
        "catalogue updated"
    )
    console.print(
        f"fingerprint sha256:{signed.fingerprint}; check: kpdeliver verify {release} --public-key KEY.pub"
    )
