"""`kpdeliver verify RELEASE` and `kpdeliver share RELEASE --expires 7d`.

RELEASE is a published release folder: a local path or `s3://bucket/.../<dataset>/v0007`.
Neither command imports Prefect or Great Expectations.
"""
from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.text import Text

app = typer.Typer()
console = Console(soft_wrap=True, highlight=False, markup=False)  # user text printed as written, paths never wrap
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)

from kpdeliver.cli.output import ENDPOINT, PROFILE, REGION, fail, plural, progress_shown
from kpdeliver.cli.output import s3_options as _options


def _open_parent(release: str, options: dict):
    from kpdeliver.release.layout import release_parent_and_name
    from kpdeliver.storage import open_store

    parent, name = release_parent_and_name(release)
    return open_store(parent, options if parent.startswith("s3://") else None), name


def _print_problems(problems) -> None:
    # one unwrapped line per problem: easy to read and to grep
    for p in problems:
        err.print(str(p), markup=False, highlight=False, soft_wrap=True)


@app.command()
def verify(
    release: str = typer.Argument(..., help="release folder: local path or s3://bucket/.../v0007"),
    endpoint_url: Optional[str] = ENDPOINT,
    region: Optional[str] = REGION,
    profile: Optional[str] = PROFILE,
) -> None:
    """Re-hash every file of a published release against its manifest.json (exit 1 on any difference)."""
    from kpdeliver.storage import StorageError
    from kpdeliver.release.verify import verify_release

    try:
        store, name = _open_parent(release, _options(endpoint_url, region, profile))
        with progress_shown():
            problems = verify_release(store, name)
    except StorageError as e:
        fail(str(e), code=1)
    if problems:
        _print_problems(problems)
        err.print(Text.assemble((plural(len(problems), "problem"), "bold red"), f" in {store.location(name)}"),
                  soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"OK {store.location(name)}: every file matches manifest.json (sha256), nothing extra",
                  soft_wrap=True)


@app.command()
def share(
    release: str = typer.Argument(..., help="release folder: local path or s3://bucket/.../v0007"),
    expires: str = typer.Option("7d", "--expires", help="link lifetime: 7d, 12h, 30m... (S3 allows at most 7d)"),
    endpoint_url: Optional[str] = ENDPOINT,
    region: Optional[str] = REGION,
    profile: Optional[str] = PROFILE,
) -> None:
    """Print links to a release's archive and manifest (presigned URLs on S3).

    The archive `<version>.zip` beside the release folder is built on first use, from a
    release that verifies against its manifest."""
    from kpdeliver.release.share import UnverifiedRelease, parse_duration, share_links
    from kpdeliver.storage import StorageError

    try:
        seconds = parse_duration(expires)
    except ValueError as e:
        fail(str(e), code=2)
    try:
        store, name = _open_parent(release, _options(endpoint_url, region, profile))
        with progress_shown():
            links = share_links(store, name, expires_seconds=seconds)
    except UnverifiedRelease as e:
        _print_problems(e.problems)
        fail(str(e), code=1)
    except StorageError as e:
        fail(str(e), code=1)
    if links.archive_created:
        console.print(f"built archive {store.location(name + '.zip')}")
    console.print(f"archive:  {links.archive}", soft_wrap=True)
    console.print(f"manifest: {links.manifest}", soft_wrap=True)
    if links.presigned:
        console.print(f"links expire in {expires} ({seconds} s)")
    else:
        console.print("local release: these are file paths; presigned links need the release on S3")
