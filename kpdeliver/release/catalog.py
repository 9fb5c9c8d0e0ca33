"""`<client>/catalog.parquet`: one row per published release of a client."""
from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from kpdeliver.model import parquet_bytes
from kpdeliver.release.layout import CATALOG, manifest_version, sha256_hex
from kpdeliver.storage import ObjectStore, join_key


def catalogued_manifest(store: ObjectStore, client_key: str, dataset: str,
                        version: int) -> tuple[str | None, str | None] | None:
    """(manifest sha256, signing key id) that the catalogue of the client folder `client_key`
    records for a release; None when the catalogue does not list it (or there is none)."""
    key = join_key(client_key, CATALOG)
    if not store.exists(key):
        return None
    table = pq.read_table(pa.BufferReader(store.get(key)))
    if "manifest_sha256" not in table.column_names:
        return None
    for row in table.to_pylist():
        if row.get("dataset") == dataset and row.get("version") == version:
            return row["manifest_sha256"], row.get("signing_key_id")
    return None


def rebuild_catalog(store: ObjectStore, client: str) -> pa.Table:
    """Rebuilt from the manifests, so it is always consistent with what is published, whatever runs raced.

    A release already catalogued keeps the row recorded when it was first listed (its manifest
    sha256 and signing key): a manifest rewritten since then stays caught by `verify`."""
    recorded = {}
    if store.exists(join_key(client, CATALOG)):
        old = pq.read_table(pa.BufferReader(store.get(join_key(client, CATALOG))))
        if "manifest_sha256" in old.column_names:
            recorded = {(r["dataset"], r["version"]): r for r in old.to_pylist()}
    rows = []
    for key in store.list(client + "/"):
        parts = key.split("/")
        if len(parts) == 4 and manifest_version("/".join(parts[2:])) is not None:
            raw = store.get(key)
            m = orjson.loads(raw)
            c = m.get("counts", {})
            if (parts[1], int(m["version"])) in recorded:  # as first catalogued, whatever the manifest says now
                rows.append(recorded[(parts[1], int(m["version"]))])
                continue
            rows.append({
                "client": client, "dataset": parts[1], "version": int(m["version"]), "created_at": m.get("created_at"),
                "location": store.location("/".join(parts[:3])), "fingerprint": m.get("fingerprint"),
                "verdict": m.get("verdict"), "images": c.get("images_delivered"), "instances": c.get("instances_delivered"),
                "quarantined": c.get("instances_quarantined"), "manifest_sha256": sha256_hex(raw),
                "signing_key_id": (m.get("signature") or {}).get("key_id"),
            })
    table = pa.Table.from_pylist(rows) if rows else pa.table({"client": pa.array([], pa.string())})
    if rows:
        table = table.sort_by([("dataset", "ascending"), ("version", "ascending")])
    store.put(join_key(client, CATALOG), parquet_bytes(table))
    return table
