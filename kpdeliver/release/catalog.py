"""`<client>/catalog.parquet`: one row per published release of a client, typed so people query it.

A publication appends its release's row; it never lists the client's releases. Appends race
(twin runs, several datasets of one client), so each catalogue state is a numbered generation
`<client>/.catalog/<n>.parquet` (dotted: never a dataset's name) written with `put_if_absent`: the writer that loses generation n
reads the winner's table and tries n + 1 with its row added. `catalog.parquet` is a copy of the
newest generation, for readers; the metadata key `kpdeliver.generation` says which, and readers
step forward past it (a copy written late by a slower twin is never the last word).
"""
from __future__ import annotations

import io
from datetime import datetime

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kpdeliver.model import parquet_bytes
from kpdeliver.release.layout import CATALOG, MANIFEST, manifest_version, release_prefix, sha256_hex, version_number
from kpdeliver.storage import ObjectStore, join_key

GENERATIONS = ".catalog"
_GENERATION = b"kpdeliver.generation"
MAX_ATTEMPTS = 50

CATALOG_SCHEMA = pa.schema([
    ("client", pa.string()), ("dataset", pa.string()), ("version", pa.int32()),
    ("created_at", pa.timestamp("us", tz="UTC")),  # Parquet has no second unit
    ("location", pa.string()),  # relative to the releases root: '<client>/<dataset>/v0007'
    ("verdict", pa.string()), ("reasons", pa.list_(pa.string())), ("schema", pa.string()),
    ("images", pa.int64()), ("instances", pa.int64()), ("quarantined", pa.int64()), ("findings", pa.int64()),
    ("mean_oks", pa.float64()),  # mean agreement OKS of the annotators; null without overlap items
    ("fingerprint", pa.string()), ("manifest_sha256", pa.string()),
])


def catalog_row(store: ObjectStore, client: str, dataset: str, version: int) -> dict:
    """The catalogue row of one published release, from its manifest (and its sign-off for the OKS)."""
    prefix = release_prefix(client, dataset, version)
    raw = store.get(join_key(prefix, MANIFEST))
    m = orjson.loads(raw)
    counts, qa = m.get("counts", {}), m.get("qa", {})
    measured = qa.get("measured")
    if measured is None and store.exists(join_key(prefix, "qa/signoff.json")):
        measured = orjson.loads(store.get(join_key(prefix, "qa/signoff.json"))).get("measured", {})
    created = m.get("created_at")
    return {
        "client": client, "dataset": dataset, "version": int(m.get("version", version)),
        "created_at": datetime.fromisoformat(created) if created else None, "location": prefix,
        "verdict": m.get("verdict"), "reasons": list(qa.get("reasons", [])),
        "schema": (m.get("schema") or {}).get("name"), "images": counts.get("images_delivered"),
        "instances": counts.get("instances_delivered"), "quarantined": counts.get("instances_quarantined"),
        "findings": counts.get("findings"), "mean_oks": (measured or {}).get("mean_agreement_oks"),
        "fingerprint": m.get("fingerprint"), "manifest_sha256": sha256_hex(raw),
    }


def _table(rows: list[dict]) -> pa.Table:
    table = pa.Table.from_pylist(rows, schema=CATALOG_SCHEMA)
    return table.sort_by([("dataset", "ascending"), ("version", "ascending")]) if rows else table


def _generation_key(client: str, n: int) -> str:
    return join_key(client, GENERATIONS, f"{n:08d}.parquet")


def _parse(data: bytes) -> tuple[pa.Table, int]:
    table = pq.read_table(io.BytesIO(data))
    meta = table.schema.metadata or {}
    generation = int(meta.get(_GENERATION, b"0"))
    if table.schema.names != CATALOG_SCHEMA.names:
        raise ValueError("catalogue of an older layout")
    return table.cast(CATALOG_SCHEMA), generation


def _bytes(table: pa.Table, generation: int) -> bytes:
    return parquet_bytes(table.replace_schema_metadata({_GENERATION: str(generation).encode()}))


def _newest(store: ObjectStore, client: str) -> tuple[pa.Table, int, bool]:
    """The newest catalogue, its generation, and whether `catalog.parquet` is a copy of it."""
    key = join_key(client, CATALOG)
    if not store.exists(key):
        table, generation = _table([]), 0
    else:
        try:
            table, generation = _parse(store.get(key))
        except (ValueError, pa.ArrowInvalid):
            return _table(_rows_from_manifests(store, client)), 0, False
    current = store.exists(key)
    while store.exists(_generation_key(client, generation + 1)):  # a newer one whose copy came late or not at all
        generation += 1
        table, _ = _parse(store.get(_generation_key(client, generation)))
        current = False
    return table, generation, current


def read_catalog(store: ObjectStore, client: str) -> tuple[pa.Table, int]:
    """The client's newest catalogue and its generation (0 and an empty table when none exists).
    A catalogue of the older untyped layout is rebuilt from the manifests."""
    table, generation, _ = _newest(store, client)
    return table, generation


def append_release(store: ObjectStore, client: str, dataset: str, version: int) -> pa.Table:
    """Add one published release to the client's catalogue under a conditional write; the new
    catalogue. Safe to call again for the same release (its row is kept once), and it finishes
    the copy of a run killed between writing a generation and copying it."""
    row = catalog_row(store, client, dataset, version)
    table, generation, current = _newest(store, client)
    for _ in range(MAX_ATTEMPTS):
        present = pc.and_(pc.equal(table["dataset"], dataset), pc.equal(table["version"], row["version"]))
        if pc.any(present).as_py():
            if not current and generation:
                store.put(join_key(client, CATALOG), _bytes(table, generation))
            return table
        new = _table([*table.to_pylist(), row])
        data = _bytes(new, generation + 1)
        if store.put_if_absent(_generation_key(client, generation + 1), data):
            store.put(join_key(client, CATALOG), data)
            return new
        generation += 1  # a twin won this generation: build on its table
        table, _ = _parse(store.get(_generation_key(client, generation)))
        current = False
    raise RuntimeError(f"catalogue of {client!r}: gave up after {MAX_ATTEMPTS} concurrent updates")


def _rows_from_manifests(store: ObjectStore, client: str) -> list[dict]:
    rows = []
    for key in store.list(client + "/"):
        parts = key.split("/")
        if len(parts) == 4 and manifest_version("/".join(parts[2:])) is not None:
            rows.append(catalog_row(store, client, parts[1], version_number(parts[2])))
    return rows


def rebuild_catalog(store: ObjectStore, client: str) -> pa.Table:
    """The repair path: the catalogue rebuilt from every published manifest (lists the client's
    keys), written as the next generation. Deliveries use `append_release`."""
    _, generation = read_catalog(store, client)
    for _ in range(MAX_ATTEMPTS):
        table = _table(_rows_from_manifests(store, client))
        data = _bytes(table, generation + 1)
        if store.put_if_absent(_generation_key(client, generation + 1), data):
            store.put(join_key(client, CATALOG), data)
            return table
        generation += 1
    raise RuntimeError(f"catalogue of {client!r}: gave up after {MAX_ATTEMPTS} concurrent updates")
