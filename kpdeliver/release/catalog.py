"""`<client>/catalog.parquet`: one row per published release of a client."""
from __future__ import annotations

import orjson
import pyarrow as pa

from kpdeliver.model import parquet_bytes
from kpdeliver.release.layout import CATALOG, manifest_version, sha256_hex
from kpdeliver.storage import ObjectStore, join_key


def rebuild_catalog(store: ObjectStore, client: str) -> pa.Table:
    """Rebuilt from the manifests, so it is always consistent with what is published, whatever runs raced."""
    rows = []
    for key in store.list(client + "/"):
        parts = key.split("/")
        if len(parts) == 4 and manifest_version("/".join(parts[2:])) is not None:
            raw = store.get(key)
            m = orjson.loads(raw)
            c = m.get("counts", {})
            rows.append({
                "client": client, "dataset": parts[1], "version": int(m["version"]), "created_at": m.get("created_at"),
                "location": store.location("/".join(parts[:3])), "fingerprint": m.get("fingerprint"),
                "verdict": m.get("verdict"), "images": c.get("images_delivered"), "instances": c.get("instances_delivered"),
                "quarantined": c.get("instances_quarantined"), "manifest_sha256": sha256_hex(raw),
            })
    table = pa.Table.from_pylist(rows) if rows else pa.table({"client": pa.array([], pa.string())})
    if rows:
        table = table.sort_by([("dataset", "ascending"), ("version", "ascending")])
    store.put(join_key(client, CATALOG), parquet_bytes(table))
    return table
