"""`<client>/catalog.parquet`: one row per published release of a client, typed so people query it.

A publication appends its release's row; it never lists the client's releases. Appends race
(twin runs, several datasets of one client), so each catalogue state is a numbered generation
`<client>/.catalog/<n>.parquet` (dotted: never a dataset's name) written with `put_if_absent`: the writer that loses generation n
reads the winner's table and tries n + 1 with its row added. `catalog.parquet` is a copy of the
newest generation, for readers; the metadata key `kpdeliver.generation` says which, and readers
step forward past it (a copy written late by a slower twin is never the last word).

A row records the manifest's sha256 and signing key as they were at publication; `verify` checks
the manifest against it, so no later write (append or repair) changes a row once recorded.

The generations form a chain: each records the sha256 of the previous generation's bytes and,
when a release key is configured, an Ed25519 signature of (client, generation, previous sha256,
digest of its rows). `verify` walks the chain (release/binding.py), so a generation deleted,
altered or rolled back is named.
"""

from __future__ import annotations

from datetime import datetime

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kpdeliver.errors import ReleaseError
from kpdeliver.model import parquet_bytes
from kpdeliver.release.layout import (
    CATALOG,
    MANIFEST,
    SIGNOFF,
    manifest_version,
    release_prefix,
    sha256_hex,
    version_number,
)
from kpdeliver.release.signing import key_id
from kpdeliver.storage import ObjectStore, join_key

GENERATIONS = ".catalog"
_GENERATION = b"kpdeliver.generation"
PREVIOUS, SIGNATURE, SIGNER = (
    b"kpdeliver.previous_sha256",
    b"kpdeliver.signature",
    b"kpdeliver.signing_key_id",
)
MAX_ATTEMPTS = 50
_RECORD = ("manifest_sha256", "signing_key_id")  # what an untyped catalogue of an older layout passes on

CATALOG_SCHEMA = pa.schema(
    [
        ("client", pa.string()),
        ("dataset", pa.string()),
        ("version", pa.int32()),
        ("created_at", pa.timestamp("us", tz="UTC")),  # Parquet has no second unit
        ("location", pa.string()),  # relative to the releases root: '<client>/<dataset>/v0007'
        ("verdict", pa.string()),
        ("reasons", pa.list_(pa.string())),
        ("schema", pa.string()),
        ("images", pa.int64()),
        ("instances", pa.int64()),
        ("quarantined", pa.int64()),
        ("findings", pa.int64()),
        ("mean_oks", pa.float64()),  # mean agreement OKS of the annotators; null without overlap items
        ("fingerprint", pa.string()),
        ("manifest_sha256", pa.string()),
        ("signing_key_id", pa.string()),  # null: published unsigned
    ]
)


class _OlderLayout(ReleaseError, ValueError):
    """A catalogue written before the typed layout; `table` is what it holds."""

    def __init__(self, table: pa.Table) -> None:
        super().__init__("catalogue of an older layout")
        self.table = table


def _mean_oks(signoff: dict) -> float | None:
    """The sign-off's measured mean agreement OKS (its delivery-wide `min_mean_oks` rule)."""
    for rule in signoff.get("rules") or []:
        if isinstance(rule, dict) and rule.get("rule") == "min_mean_oks" and rule.get("subject") is None:
            return rule.get("measured")
    return None


def catalog_row(store: ObjectStore, client: str, dataset: str, version: int) -> dict:
    """The catalogue row of one published release, from its manifest (and its sign-off for the OKS)."""
    prefix = release_prefix(client, dataset, version)
    raw = store.get(join_key(prefix, MANIFEST))
    m = orjson.loads(raw)
    counts, qa = m.get("counts", {}), m.get("qa", {})
    signoff_key = join_key(prefix, SIGNOFF)
    signoff = orjson.loads(store.get(signoff_key)) if store.exists(signoff_key) else {}
    created = m.get("created_at")
    return {
        "client": client,
        "dataset": dataset,
        "version": int(m.get("version", version)),
        "created_at": datetime.fromisoformat(created) if created else None,
        "location": prefix,
        "verdict": m.get("verdict"),
        "reasons": list(qa.get("reasons", [])),
        "schema": (m.get("schema") or {}).get("name"),
        "images": counts.get("images_delivered"),
        "instances": counts.get("instances_delivered"),
        "quarantined": counts.get("instances_quarantined"),
        "findings": counts.get("findings"),
        "mean_oks": _mean_oks(signoff if isinstance(signoff, dict) else {}),
        "fingerprint": m.get("fingerprint"),
        "manifest_sha256": sha256_hex(raw),
        "signing_key_id": (m.get("signature") or {}).get("key_id"),
    }


def _table(rows: list[dict]) -> pa.Table:
    table = pa.Table.from_pylist(rows, schema=CATALOG_SCHEMA)
    return table.sort_by([("dataset", "ascending"), ("version", "ascending")]) if rows else table


def generation_key(client: str, n: int) -> str:
    return join_key(client, GENERATIONS, f"{n:08d}.parquet")


def parse_generation(data: bytes) -> tuple[pa.Table, int]:
    # in this thread only: Arrow's CPU and I/O pools (read_table's dataset scan, pre-buffering, a
    # Python file object) start native threads that a short command (verify, releases) leaves alive
    # at exit, where their teardown aborts the process (exit 134)
    table = pq.ParquetFile(pa.BufferReader(data), pre_buffer=False).read(use_threads=False)
    meta = table.schema.metadata or {}
    generation = int(meta.get(_GENERATION, b"0"))
    if table.schema.names != CATALOG_SCHEMA.names:
        raise _OlderLayout(table)
    return table.cast(CATALOG_SCHEMA), generation


def statement(client: str, generation: int, previous: str, table: pa.Table) -> bytes:
    """What a generation's signature covers: its client, number, predecessor and rows."""
    rows = sha256_hex(orjson.dumps(table.to_pylist(), option=orjson.OPT_SORT_KEYS))
    return orjson.dumps(
        {"catalogue_of": client, "generation": generation, "previous_sha256": previous, "rows_sha256": rows},
        option=orjson.OPT_SORT_KEYS,
    )


def generation_meta(data: bytes) -> dict[bytes, bytes]:
    """The kpdeliver metadata of a generation's bytes (generation, previous sha256, signature, signer)."""
    return pq.ParquetFile(pa.BufferReader(data), pre_buffer=False).schema_arrow.metadata or {}


def _bytes(
    store: ObjectStore, client: str, table: pa.Table, generation: int, key: Ed25519PrivateKey | None
) -> bytes:
    """Generation `generation` of the catalogue, chained to the previous one and signed with `key`."""
    before = generation_key(client, generation - 1)
    previous = sha256_hex(store.get(before)) if generation > 1 and store.exists(before) else ""
    meta = {_GENERATION: str(generation).encode(), PREVIOUS: previous.encode()}
    if key is not None:
        meta |= {
            SIGNATURE: key.sign(statement(client.rsplit("/", 1)[-1], generation, previous, table))
            .hex()
            .encode(),
            SIGNER: key_id(key).encode(),
        }
    return parquet_bytes(table.replace_schema_metadata(meta))


def _recorded(table: pa.Table) -> dict[tuple[str, int], dict]:
    """What `table` recorded of each release, by (dataset, version): whole rows of a typed
    catalogue, the manifest sha256 and signing key of an older one."""
    if table.schema.names == CATALOG_SCHEMA.names:
        return {(r["dataset"], r["version"]): r for r in table.to_pylist()}
    if not {"dataset", "version", "manifest_sha256"} <= set(table.column_names):
        return {}
    return {(r["dataset"], r["version"]): {k: r.get(k) for k in _RECORD} for r in table.to_pylist()}


def _step_forward(
    store: ObjectStore, client: str, table: pa.Table, generation: int
) -> tuple[pa.Table, int, bool]:
    """The newest generation from `generation` on, and whether it is a later one than given."""
    stepped = False
    while store.exists(
        generation_key(client, generation + 1)
    ):  # a newer one whose copy came late or not at all
        generation += 1
        table, _ = parse_generation(store.get(generation_key(client, generation)))
        stepped = True
    return table, generation, stepped


def _newest(store: ObjectStore, client: str) -> tuple[pa.Table, int, bool]:
    """The newest catalogue, its generation, and whether `catalog.parquet` is a copy of it."""
    key = join_key(client, CATALOG)
    if not store.exists(key):
        table, generation = _table([]), 0
    else:
        try:
            table, generation = parse_generation(store.get(key))
        except _OlderLayout as e:  # migrated, keeping what it recorded at publication
            return _table(_rows_from_manifests(store, client, _recorded(e.table))), 0, False
    table, generation, stepped = _step_forward(store, client, table, generation)
    return table, generation, store.exists(key) and not stepped


def read_catalog(store: ObjectStore, client: str) -> tuple[pa.Table, int]:
    """The client's newest catalogue and its generation (0 and an empty table when none exists).
    A catalogue of the older untyped layout is rebuilt from the manifests."""
    table, generation, _ = _newest(store, client)
    return table, generation


def catalogued_row(store: ObjectStore, client_key: str, dataset: str, version: int) -> dict | None:
    """What the newest catalogue of the client folder `client_key` recorded of a release when it
    was published (the whole row; manifest sha256 and signing key for an older layout); None when
    it does not list it (or there is none). Never rebuilt from the manifests: a damaged catalogue raises."""
    key = join_key(client_key, CATALOG)
    if not store.exists(key) and not store.exists(generation_key(client_key, 1)):
        return None
    try:
        table, generation = parse_generation(store.get(key)) if store.exists(key) else (_table([]), 0)
        table, _, _ = _step_forward(store, client_key, table, generation)
    except _OlderLayout as e:
        table = e.table
    return _recorded(table).get((dataset, version))


def append_release(
    store: ObjectStore, client: str, dataset: str, version: int, signing_key: Ed25519PrivateKey | None = None
) -> pa.Table:
    """Add one published release to the client's catalogue under a conditional write; the new
    catalogue. Safe to call again for the same release (its row is kept once, as first recorded),
    and it finishes the copy of a run killed between writing a generation and copying it."""
    row = catalog_row(store, client, dataset, version)
    table, generation, current = _newest(store, client)
    for _ in range(MAX_ATTEMPTS):
        present = pc.and_(pc.equal(table["dataset"], dataset), pc.equal(table["version"], row["version"]))
        if pc.any(present).as_py():
            if not current and generation and store.exists(generation_key(client, generation)):
                store.put(join_key(client, CATALOG), store.get(generation_key(client, generation)))
            return table
        new = _table([*table.to_pylist(), row])
        data = _bytes(store, client, new, generation + 1, signing_key)
        if store.put_if_absent(generation_key(client, generation + 1), data):
            store.put(join_key(client, CATALOG), data)
            return new
        generation += 1  # a twin won this generation: build on its table
        table, _ = parse_generation(store.get(generation_key(client, generation)))
        current = False
    raise RuntimeError(f"catalogue of {client!r}: gave up after {MAX_ATTEMPTS} concurrent updates")


def _rows_from_manifests(
    store: ObjectStore, client: str, recorded: dict[tuple[str, int], dict]
) -> list[dict]:
    """A row per published manifest; a release in `recorded` keeps what was recorded of it."""
    rows = []
    for key in store.list(client + "/"):
        parts = key.split("/")
        version = version_number(parts[2]) if len(parts) == 4 else None
        if version is not None and manifest_version("/".join(parts[2:])) is not None:
            row = catalog_row(store, client, parts[1], version)
            rows.append({**row, **recorded.get((row["dataset"], row["version"]), {})})
    return rows


def rebuild_catalog(
    store: ObjectStore, client: str, signing_key: Ed25519PrivateKey | None = None
) -> pa.Table:
    """The repair path: the catalogue rebuilt from every published manifest (lists the client's
    keys), written as the next generation. A release already catalogued keeps its row as first
    recorded, so a manifest rewritten since stays caught by `verify`. Deliveries use `append_release`."""
    for _ in range(MAX_ATTEMPTS):
        current, generation = read_catalog(store, client)
        table = _table(_rows_from_manifests(store, client, _recorded(current)))
        data = _bytes(store, client, table, generation + 1, signing_key)
        if store.put_if_absent(generation_key(client, generation + 1), data):
            store.put(join_key(client, CATALOG), data)
            return table
    raise RuntimeError(f"catalogue of {client!r}: gave up after {MAX_ATTEMPTS} concurrent updates")


def record_signature(
    store: ObjectStore, client: str, dataset: str, version: int, signing_key: Ed25519PrivateKey
) -> pa.Table:
    """A release signed after publication (`kpdeliver sign`): a new generation whose row of it names
    the key, signed with that key (so `verify --public-key` finds the newest generation signed).
    The row's manifest sha256 stays as recorded: the manifest is unchanged. Safe to call again."""
    append_release(
        store, client, dataset, version, signing_key
    )  # a publication killed before its catalogue entry
    for _ in range(MAX_ATTEMPTS):
        table, generation, _ = _newest(store, client)
        rows = table.to_pylist()
        row = next(r for r in rows if (r["dataset"], r["version"]) == (dataset, version))
        meta = generation_meta(store.get(generation_key(client, generation))) if generation else {}
        if row["signing_key_id"] == key_id(signing_key) and meta.get(SIGNER, b"").decode() == key_id(
            signing_key
        ):
            return table
        row["signing_key_id"] = key_id(signing_key)
        data = _bytes(store, client, _table(rows), generation + 1, signing_key)
        if store.put_if_absent(generation_key(client, generation + 1), data):
            store.put(join_key(client, CATALOG), data)
            return _table(rows)
    raise RuntimeError(f"catalogue of {client!r}: gave up after {MAX_ATTEMPTS} concurrent updates")
