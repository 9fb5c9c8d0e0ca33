"""`kpdeliver verify RELEASE` and `kpdeliver share RELEASE --expires 7d`.

RELEASE is a published release folder: a local path or `s3://bucket/.../<client>/<dataset>/v0007`.
Both open the client's folder (where the catalogue and the vendor's public key live). Neither
command imports Prefect or Great Expectations. Exit codes: 0 whole, 1 the release differs (or
is not one), 2 the release could not be checked (store unreachable or
unreadable: no credentials, access denied) or an option is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from kpdeliver.cli.output import (
    CONFIG,
    ENDPOINT,
    PROFILE,
    REGION,
    fail,
    plural,
    progress_shown,
    store_options,
    unreachable_hint,
)

app = typer.Typer()
console = Console(
    soft_wrap=True, highlight=False, markup=False
)  # user text printed as written, paths never wrap
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)

PUBLIC_KEY = typer.Option(
    None,
    "--public-key",
    help="the vendor's Ed25519 public key (PEM), or a folder of them "
    "(*.pub); repeatable: across a key rotation pin the old "
    "and the new key (default: the keys published beside the catalogue)",
)


def _open_client(release: str, options: dict):
    from kpdeliver.release.layout import release_client_and_key
    from kpdeliver.storage import open_store

    client, name = release_client_and_key(release)
    return open_store(client, options if client.startswith("s3://") else None), name


def _public_keys(paths: list[Path] | None):
    """The pinned keys: each --public-key file, and every *.pub file of a --public-key folder."""
    from kpdeliver.release.signing import SigningKeyError, public_key_from_pem

    files = []
    for path in paths or []:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix == ".pub" and p.is_file())
            if not found:
                fail(f"--public-key folder {path} holds no *.pub file")
            files += found
        else:
            files.append(path)
    try:
        return [public_key_from_pem(f.read_bytes(), origin=str(f)) for f in files] or None
    except OSError as e:
        fail(f"cannot read {e.filename}: {e.strerror}")
    except SigningKeyError as e:
        fail(str(e))


def _print_problems(problems) -> None:
    # one unwrapped line per problem: easy to read and to grep
    for p in problems:
        err.print(str(p))


def _unreachable(e, options: dict) -> NoReturn:
    err.print(Text.assemble(("store unreachable:", "bold red"), f" {e}"))
    err.print(
        f"the release was not checked (exit 2); this says nothing about its content; {unreachable_hint(options)}"
    )
    raise typer.Exit(2)


def _verified_json(location: str, result) -> str:
    import orjson

    return orjson.dumps(
        {
            "release": location,
            "ok": not result.problems,
            "signed_by": result.signed_by,
            "fingerprint": result.fingerprint,
            "pinned": result.pinned,
            "notes": result.notes,
            "problems": [{"kind": p.kind, "path": p.path, "detail": p.detail} for p in result.problems],
        },
        option=orjson.OPT_INDENT_2,
    ).decode()


def _print_verified(location: str, result) -> None:
    for note in result.notes:
        console.print(note)
    if result.problems:
        _print_problems(result.problems)
        err.print(Text.assemble((plural(len(result.problems), "problem"), "bold red"), f" in {location}"))
        return
    signed = f"signature valid (Ed25519, key {result.signed_by})" if result.signed_by else "UNSIGNED"
    console.print(f"OK {location}: {signed}; every file matches manifest.json (sha256), nothing extra")
    if result.fingerprint:
        console.print(
            f"signing key fingerprint sha256:{result.fingerprint} "
            + (
                "(pinned with --public-key)"
                if result.pinned
                else "(NOT pinned: taken from the release's own folder, "
                "which proves nothing against a swapped signing-key.pub; compare it with the vendor's and pass "
                "--public-key)"
            )
        )


@app.command()
def verify(
    release: str = typer.Argument(..., help="release folder: local path or s3://bucket/.../v0007"),
    public_key: list[Path] | None = PUBLIC_KEY,
    config: Path | None = CONFIG,
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON (same exit codes)"),
    endpoint_url: str | None = ENDPOINT,
    region: str | None = REGION,
    profile: str | None = PROFILE,
) -> None:
    """Check a published release: its signature, the catalogue's record of its manifest, the
    sign-off against the manifest, and every file re-hashed (exit 1 on any difference)."""
    from kpdeliver.release.verify import check_release
    from kpdeliver.storage import StorageError, StoreUnreachable

    keys = _public_keys(public_key)
    options = store_options(config, endpoint_url, region, profile)
    try:
        store, name = _open_client(release, options)
        with progress_shown():
            result = check_release(store, name, public_key=keys)
    except StoreUnreachable as e:
        _unreachable(e, options)
    except StorageError as e:  # credentials, access: the release could not be checked
        fail(f"{e}\nthe release was not checked (exit 2)")
    if as_json:
        typer.echo(_verified_json(store.location(name), result))
    else:
        _print_verified(store.location(name), result)
    if result.problems:
        raise typer.Exit(1)


def _checked_expiry(release: str, expires: str) -> int:
    """--expires in seconds, refused (exit 2) before any work when it cannot be read or the store
    cannot honour it."""
    from kpdeliver.release.share import expiry_problem, parse_duration

    try:
        seconds = parse_duration(expires)
    except ValueError as e:
        fail(str(e))
    problem = expiry_problem(release, seconds)
    if problem:
        fail(problem)
    return seconds


@app.command()
def share(
    release: str = typer.Argument(..., help="release folder: local path or s3://bucket/.../v0007"),
    expires: str = typer.Option(
        "7d",
        "--expires",
        help="link lifetime: 7d, 12h, 1d12h, 30m or seconds "
        "(S3 allows at most 7d; local paths do not expire)",
    ),
    public_key: list[Path] | None = PUBLIC_KEY,
    config: Path | None = CONFIG,
    endpoint_url: str | None = ENDPOINT,
    region: str | None = REGION,
    profile: str | None = PROFILE,
) -> None:
    """Print links to a release's archive, manifest and QA report (presigned URLs on S3).

    The release is verified first; its archive `<version>.zip` beside the folder is rebuilt
    from it, and one found there is replaced unless it is byte for byte the release's."""
    from kpdeliver.release.share import UnverifiedRelease, share_links
    from kpdeliver.storage import StorageError, StoreUnreachable

    seconds = _checked_expiry(release, expires)
    keys = _public_keys(public_key)
    options = store_options(config, endpoint_url, region, profile)
    try:
        store, name = _open_client(release, options)
        with progress_shown():
            links = share_links(store, name, expires_seconds=seconds, public_key=keys)
    except UnverifiedRelease as e:
        err.print(Text.assemble(("error:", "bold red"), f" {e}"))
        _print_problems(e.problems)
        raise typer.Exit(1) from None
    except StoreUnreachable as e:
        _unreachable(e, options)
    except StorageError as e:
        fail(str(e), code=1)
    _print_links(store, name, links, expires, seconds)


def _print_links(store, name: str, links, expires: str, seconds: int) -> None:
    if links.archive_state == "built":
        console.print(f"built archive {store.location(name + '.zip')}")
    elif links.archive_state == "replaced":
        console.print(
            Text(
                f"replaced archive {store.location(name + '.zip')}: it was not the release's "
                "own (planted or damaged)",
                style="yellow",
            )
        )
    console.print(f"archive:  {links.archive}")
    console.print(f"manifest: {links.manifest}")
    if links.report:
        console.print(f"report:   {links.report}")
    if links.public_key:
        console.print(f"signed by key {links.signed_by}; public key: {links.public_key}")
    else:
        console.print("unsigned release: no signature to check")
    if links.presigned:
        console.print(f"links expire in {expires} ({seconds} s)")
    else:
        console.print(
            "local release: these are file paths, which do not expire (--expires applies to S3 links); "
            "presigned links need the release on S3"
        )
