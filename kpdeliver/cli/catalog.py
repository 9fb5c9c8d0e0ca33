"""`kpdeliver releases [LOCATION] [--client C] [--config CLIENT.yaml] [--json]`: the published
releases, from the clients' catalogues (`<client>/catalog.parquet`), newest last. LOCATION is the
releases root or one client's folder; with --config it defaults to the config's `releases:` and
client, and the config's storage settings open it. No Prefect, no Great Expectations."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kpdeliver.cli.output import (
    CONFIG,
    ENDPOINT,
    PROFILE,
    REGION,
    fail,
    show_table,
    store_options,
    unreachable_hint,
)

app = typer.Typer()
console = Console(highlight=False, markup=False)


def _clients(location: str) -> list[str]:
    """The clients with a catalogue in a local releases folder (S3 would need a listing of every key)."""
    if "://" in location and not location.startswith("file://"):
        fail("give --client (or --config): finding every client on S3 would list every release's keys")
    root = Path(location.removeprefix("file://")).expanduser()
    if not root.is_dir():
        fail(f"releases folder {root} does not exist")
    return sorted(p.parent.name for p in root.glob("*/catalog.parquet"))


def releases_location(
    location: str | None, client: str | None, config: Path | None
) -> tuple[str, str | None]:
    """(releases root, client or None) from the arguments: a client folder given as LOCATION is
    recognised by its catalogue, so both the root and `<root>/<client>` work."""
    if location is None:
        if config is None:
            fail("give the releases location (root or a client's folder), or --config CLIENT.yaml")
        from kpdeliver.config import ConfigError, load_config

        try:
            cfg = load_config(config)
        except ConfigError as e:
            fail(str(e))
        return cfg.releases, client or cfg.client
    return location, client


def _rows(location: str, client: str | None, options: dict) -> list[dict]:
    from kpdeliver.release.catalog import read_catalog
    from kpdeliver.release.layout import CATALOG, MANIFEST, release_parent_and_name
    from kpdeliver.storage import StorageError, StoreUnreachable, join_key, open_store

    def store_at(where: str):
        return open_store(where, options if where.startswith("s3://") else None)

    try:
        store = store_at(location)
        if client is None and store.exists(CATALOG):  # a client's folder, not the root
            location, client = release_parent_and_name(location)
            store = store_at(location)
        clients = [client] if client else _clients(location)
        rows = [r for c in clients for r in read_catalog(store, c)[0].to_pylist()]
        # a release withdrawn (its folder removed, docs/operations.md) stays in the catalogue's history
        return [r | {"withdrawn": not store.exists(join_key(r["location"], MANIFEST))} for r in rows]
    except StoreUnreachable as e:
        fail(f"store unreachable: {e}; {unreachable_hint(options)}")
    except StorageError as e:
        fail(str(e))


def _table(location: str, rows: list[dict]) -> Table:
    t = Table(title=f"releases under {location}", title_justify="left")
    for col, justify in (
        ("client", "left"),
        ("dataset", "left"),
        ("version", "right"),
        ("created (UTC)", "left"),
        ("verdict", "left"),
        ("images", "right"),
        ("instances", "right"),
        ("quarantined", "right"),
        ("findings", "right"),
        ("mean OKS", "right"),
    ):
        t.add_column(col, justify="right" if justify == "right" else "left", overflow="fold")
    style = {"pass": "green", "conditional": "yellow", "fail": "red"}
    for r in rows:
        created = r["created_at"].strftime("%Y-%m-%d %H:%M") if r["created_at"] else ""
        oks = f"{r['mean_oks']:.3f}" if r["mean_oks"] is not None else "—"
        verdict = Text(
            "withdrawn" if r["withdrawn"] else str(r["verdict"]), style=style.get(r["verdict"], "")
        )
        t.add_row(
            r["client"],
            r["dataset"],
            f"v{r['version']:04d}",
            created,
            verdict,
            *(
                str(r[k]) if r[k] is not None else ""
                for k in ("images", "instances", "quarantined", "findings")
            ),
            oks,
        )
    return t


@app.command()
def releases(
    location: str | None = typer.Argument(
        None,
        help="releases root or one client's folder: local folder or "
        "s3://bucket/prefix (default: the --config's releases:)",
    ),
    client: str | None = typer.Option(None, "--client", help="only this client's releases"),
    config: Path | None = CONFIG,
    as_json: bool = typer.Option(False, "--json", help="print the releases as JSON"),
    endpoint_url: str | None = ENDPOINT,
    region: str | None = REGION,
    profile: str | None = PROFILE,
) -> None:
    """List published releases: version, date, verdict, counts and mean agreement OKS."""
    location, client = releases_location(location, client, config)
    rows = _rows(location, client, store_options(config, endpoint_url, region, profile))
    if as_json:
        import orjson

        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2 | orjson.OPT_NAIVE_UTC).decode())
    if not rows:
        fail(f"no published release under {location}" + (f" for client {client!r}" if client else ""), code=1)
    if as_json:
        return
    show_table(console, _table(location, rows))
    for r in rows:
        for reason in r["reasons"] or []:
            console.print(f"{r['client']}/{r['dataset']} v{r['version']:04d}: {reason}", markup=False)
