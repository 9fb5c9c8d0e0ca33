"""`kpdeliver releases RELEASES_LOCATION [--client C]`: the published releases, from the clients'
catalogues (`<client>/catalog.parquet`), newest last. No Prefect, no Great Expectations."""
from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kpdeliver.cli.output import ENDPOINT, PROFILE, REGION, fail, s3_options

app = typer.Typer()
console = Console(highlight=False, markup=False)


def _clients(store, location: str) -> list[str]:
    """The clients with a catalogue in a local releases folder (S3 would need a listing of every key)."""
    from pathlib import Path

    if "://" in location and not location.startswith("file://"):
        fail("give --client: finding every client on S3 would list every release's keys")
    root = Path(location.removeprefix("file://")).expanduser()
    if not root.is_dir():
        fail(f"releases folder {root} does not exist")
    return sorted(p.parent.name for p in root.glob("*/catalog.parquet"))


@app.command()
def releases(
    location: str = typer.Argument(..., help="releases root: local folder or s3://bucket/prefix"),
    client: Optional[str] = typer.Option(None, "--client", "-c", help="only this client's releases"),
    endpoint_url: Optional[str] = ENDPOINT,
    region: Optional[str] = REGION,
    profile: Optional[str] = PROFILE,
) -> None:
    """List published releases: version, date, verdict, counts and mean agreement OKS."""
    from kpdeliver.release.catalog import read_catalog
    from kpdeliver.storage import open_store

    # a StorageError is said by the command line's one mapping (cli/runtime.py)
    store = open_store(location, s3_options(endpoint_url, region, profile) if "://" in location else None)
    clients = [client] if client else _clients(store, location)
    tables = [read_catalog(store, c)[0] for c in clients]
    rows = [r for t in tables for r in t.to_pylist()]
    if not rows:
        fail(f"no published release under {location}" + (f" for client {client!r}" if client else ""), code=1)
    t = Table(title=f"releases under {location}", title_justify="left")
    for col, justify in (("client", "left"), ("dataset", "left"), ("version", "right"), ("created (UTC)", "left"),
                         ("verdict", "left"), ("images", "right"), ("instances", "right"),
                         ("quarantined", "right"), ("findings", "right"), ("mean OKS", "right")):
        t.add_column(col, justify=justify, overflow="fold")
    style = {"pass": "green", "conditional": "yellow", "fail": "red"}
    for r in rows:
        created = r["created_at"].strftime("%Y-%m-%d %H:%M") if r["created_at"] else ""
        oks = f"{r['mean_oks']:.3f}" if r["mean_oks"] is not None else "—"
        verdict = Text(str(r["verdict"]), style=style.get(r["verdict"], ""))
        t.add_row(r["client"], r["dataset"], f"v{r['version']:04d}", created, verdict,
                  *(str(r[k]) if r[k] is not None else "" for k in ("images", "instances", "quarantined", "findings")),
                  oks)
    console.print(t)
    for r in rows:
        for reason in r["reasons"] or []:
            console.print(f"{r['client']}/{r['dataset']} v{r['version']:04d}: {reason}", markup=False)
