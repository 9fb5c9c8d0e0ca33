"""`kpdeliver clean [RELEASES] [--client C] [-c CONFIG] [--older-than 1d] [--apply]`: what failed or
killed runs left under the releases location's `.staging/`, and which of it is safe to remove
(kpdeliver.release.leftovers). Shows by default; removes only with --apply. Claims stay."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from kpdeliver.cli.output import (
    CONFIG,
    ENDPOINT,
    PROFILE,
    REGION,
    fail,
    plural,
    show_table,
    store_options,
    unreachable_hint,
)

app = typer.Typer()
console = Console(soft_wrap=True, highlight=False, markup=False)


@app.command()
def clean(
    location: str | None = typer.Argument(
        None, help="releases root: local folder or s3://bucket/prefix (default: the --config's releases:)"
    ),
    client: str | None = typer.Option(None, "--client", help="only this client's staging"),
    config: Path | None = CONFIG,
    older_than: str = typer.Option(
        "1d",
        "--older-than",
        help="an unclaimed staging folder is stale after this long (longer than any run takes)",
    ),
    apply: bool = typer.Option(
        False, "--apply", help="remove the removable folders (default: only show them)"
    ),
    endpoint_url: str | None = ENDPOINT,
    region: str | None = REGION,
    profile: str | None = PROFILE,
) -> None:
    """Show (and with --apply remove) staging folders left by failed or killed runs: those of inputs
    already published, and unclaimed ones older than --older-than; and a publication's STAGED
    marker left in a published release folder. What an unfinished publication needs is kept: run
    the same delivery again to finish it."""
    from kpdeliver.cli.catalog import releases_location
    from kpdeliver.release.leftovers import find_leftovers, remove_leftovers
    from kpdeliver.release.share import parse_duration
    from kpdeliver.storage import StorageError, StoreUnreachable, open_store

    try:
        seconds = parse_duration(older_than, minimum=0)
    except ValueError as e:
        fail(str(e))
    location, client = releases_location(location, client, config)
    options = store_options(config, endpoint_url, region, profile)
    try:
        store = open_store(location, options if location.startswith("s3://") else None)
        found = find_leftovers(store, client, older_than=seconds)
        removed = remove_leftovers(store, found) if apply else 0
    except StoreUnreachable as e:
        fail(f"store unreachable: {e}; {unreachable_hint(options)}")
    except StorageError as e:
        fail(str(e))
    if not found:
        console.print(f"nothing left over under {store.location('.staging')}")
        return
    t = Table(title=f"left over under {location}")
    for col in ("folder", "files", "state", "action", "why"):
        t.add_column(col, justify="right" if col == "files" else "left")
    for f in found:
        action = ("removed" if apply else "removable") if f.removable else "kept"
        t.add_row(f.folder, str(f.files), f.state, action, f.why)
    show_table(console, t)
    n = sum(f.removable for f in found)
    if apply:
        console.print(f"removed {plural(n, 'folder')} ({plural(removed, 'file')})")
    elif n:
        console.print(f"{plural(n, 'folder')} can be removed: run again with --apply")
