"""`kpdeliver verify RELEASE` and `kpdeliver share RELEASE --expires 7d`.

RELEASE is a published release folder: a local path or `s3://bucket/.../<client>/<dataset>/v0007`.
Both open the client's folder (where the catalogue and the vendor's public key live). Neither
command imports Prefect or Great Expectations. Exit codes: 0 whole, 1 the release differs (or
is not one), 2 the release could not be checked (store unreachable or
unreadable: no credentials, access denied) or an option is wrong.
"""
from __future__ import annotations

from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.text import Text

from kpdeliver.cli.output import ENDPOINT, PROFILE, REGION, fail, plural, progress_shown
from kpdeliver.cli.output import s3_options as _options

app = typer.Typer()
console = Console(soft_wrap=True, highlight=False, markup=False)  # user text printed as written, paths never wrap
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)

PUBLIC_KEY = typer.Option(None, "--public-key", help="the vendor's Ed25519 public key (PEM): the release must be "
                                                    "signed with it (default: the key published beside the catalogue)")


def _open_client(release: str, options: dict):
    from kpdeliver.release.layout import release_client_and_key
    from kpdeliver.storage import open_store

    client, name = release_client_and_key(release)
    return open_store(client, options if client.startswith("s3://") else None), name


def _public_key(path: Optional[Path]):
    from kpdeliver.release.signing import public_key_from_pem

    if path is None:
        return None
    try:  # a SigningKeyError is said by the command line's one mapping (cli/runtime.py)
        return public_key_from_pem(path.read_bytes(), origin=str(path))
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")


def _print_problems(problems) -> None:
    # one unwrapped line per problem: easy to read and to grep
    for p in problems:
        err.print(str(p))


def _unreachable(e) -> NoReturn:
    err.print(Text.assemble(("store unreachable:", "bold red"), f" {e}"))
    err.print("the release was not checked (exit 2); this says nothing about its content")
    raise typer.Exit(2)


@app.command()
def verify(
    release: str = typer.Argument(..., help="release folder: local path or s3://bucket/.../v0007"),
    public_key: Optional[Path] = PUBLIC_KEY,
    endpoint_url: Optional[str] = ENDPOINT,
    region: Optional[str] = REGION,
    profile: Optional[str] = PROFILE,
) -> None:
    """Check a published release: its signature, the catalogue's record of its manifest, the
    sign-off against the manifest, and every file re-hashed (exit 1 on any difference)."""
    from kpdeliver.release.verify import check_release
    from kpdeliver.storage import StorageError, StoreUnreachable

    key = _public_key(public_key)
    try:
        store, name = _open_client(release, _options(endpoint_url, region, profile))
        with progress_shown():
            result = check_release(store, name, public_key=key)
    except StoreUnreachable as e:
        _unreachable(e)
    except StorageError as e:  # credentials, access: the release could not be checked
        fail(f"{e}\nthe release was not checked (exit 2)")
    for note in result.notes:
        console.print(note)
    if result.problems:
        _print_problems(result.problems)
        err.print(Text.assemble((plural(len(result.problems), "problem"), "bold red"), f" in {store.location(name)}"))
        raise typer.Exit(1)
    signed = f"signature valid (Ed25519, key {result.signed_by})" if result.signed_by else "UNSIGNED"
    console.print(f"OK {store.location(name)}: {signed}; every file matches manifest.json (sha256), nothing extra")
    if result.fingerprint:
        console.print(f"signing key fingerprint sha256:{result.fingerprint} " + (
            "(pinned with --public-key)" if result.pinned else "(NOT pinned: taken from the release's own folder, "
            "which proves nothing against a swapped signing-key.pub; compare it with the vendor's and pass "
            "--public-key)"))


@app.command()
def share(
    release: str = typer.Argument(..., help="release folder: local path or s3://bucket/.../v0007"),
    expires: str = typer.Option("7d", "--expires", help="link lifetime: 7d, 12h, 30m... (S3 allows at most 7d)"),
    public_key: Optional[Path] = PUBLIC_KEY,
    endpoint_url: Optional[str] = ENDPOINT,
    region: Optional[str] = REGION,
    profile: Optional[str] = PROFILE,
) -> None:
    """Print links to a release's archive and manifest (presigned URLs on S3).

    The release is verified first; its archive `<version>.zip` beside the folder is rebuilt
    from it, and one found there is replaced unless it is byte for byte the release's."""
    from kpdeliver.release.share import UnverifiedRelease, parse_duration, share_links
    from kpdeliver.storage import StorageError, StoreUnreachable

    try:
        seconds = parse_duration(expires)
    except ValueError as e:
        fail(str(e), code=2)
    key = _public_key(public_key)
    try:
        store, name = _open_client(release, _options(endpoint_url, region, profile))
        with progress_shown():
            links = share_links(store, name, expires_seconds=seconds, public_key=key)
    except UnverifiedRelease as e:
        err.print(Text.assemble(("error:", "bold red"), f" {e}"))
        _print_problems(e.problems)
        raise typer.Exit(1)
    except StoreUnreachable as e:
        _unreachable(e)
    except StorageError as e:
        fail(str(e), code=1)
    if links.archive_state == "built":
        console.print(f"built archive {store.location(name + '.zip')}")
    elif links.archive_state == "replaced":
        console.print(Text(f"replaced archive {store.location(name + '.zip')}: it was not the release's "
                           "own (planted or damaged)", style="yellow"))
    console.print(f"archive:  {links.archive}")
    console.print(f"manifest: {links.manifest}")
    if links.public_key:
        console.print(f"signed by key {links.signed_by}; public key: {links.public_key}")
    else:
        console.print("unsigned release: no signature to check")
    if links.presigned:
        console.print(f"links expire in {expires} ({seconds} s)")
    else:
        console.print("local release: these are file paths; presigned links need the release on S3")
