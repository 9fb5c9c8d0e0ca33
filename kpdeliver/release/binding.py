"""A release bound to its place: what `verify` checks beyond the files and the signature.

A signature says who wrote a manifest, not where it belongs. A validly signed release copied to
another client's folder, another dataset or another version number would verify unchanged; so
the manifest's client, dataset and version must be those of the folder the release sits in
(`…/<client>/<dataset>/v<NNNN>`), and the catalogue's row must record the same place.

The catalogue is trusted only as a chain: generations 1..N all present, each recording the
sha256 of the one before, and the newest signed by the release key when there is one (so its
hash links vouch for every earlier one). A generation deleted or altered, `catalog.parquet`
that is no copy of its generation, or a release missing from the newest generation (a rollback)
is a problem. Problems are (kind, path, detail) triples: `verify` makes them its Problems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kpdeliver.release import catalog, signing
from kpdeliver.release.layout import CATALOG, client_key, release_prefix, sha256_hex, version_number
from kpdeliver.storage import ObjectStore, StorageError, StoreUnreachable, join_key

_GENERATION_NAME = re.compile(r"^(\d{8})\.parquet$")


@dataclass(frozen=True)
class Place:
    """Where a release sits: the last three parts of its location."""

    client: str
    dataset: str
    version: int

    @property
    def prefix(self) -> str:
        return release_prefix(self.client, self.dataset, self.version)


@dataclass
class CatalogueCheck:
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    row: dict | None = None  # what the newest generation recorded of the release
    listed: bool = False  # the client has a catalogue at all


@dataclass
class Binding:
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    record: tuple[str | None, str | None] | None = (
        None  # (manifest sha256, signing key id) the catalogue recorded
    )
    notes: list[str] = field(default_factory=list)


def place_of(store: ObjectStore, prefix: str) -> Place | None:
    """The release's place from its location (path or URL); None when it is not `…/<c>/<d>/v<NNNN>`."""
    parts = [p for p in store.location(prefix).rstrip("/").split("/") if p]
    version = version_number(parts[-1]) if len(parts) >= 3 else None
    if version is None:
        return None
    return Place(parts[-3], parts[-2], version)


def place_problems(manifest: dict, place: Place) -> list[tuple[str, str, str]]:
    """The manifest's client, dataset and version against the folder the release sits in."""
    said = {
        "client": manifest.get("client"),
        "dataset": manifest.get("dataset"),
        "version": manifest.get("version"),
    }
    where = {"client": place.client, "dataset": place.dataset, "version": place.version}
    return [
        (
            "place",
            "manifest.json",
            f"manifest says {what} {said[what]!r}, release sits at "
            f"{place.prefix} ({what} {where[what]!r}): a release copied from elsewhere",
        )
        for what in where
        if said[what] != where[what]
    ]


def _row_problems(row: dict, place: Place) -> list[tuple[str, str, str]]:
    want = {
        "client": place.client,
        "dataset": place.dataset,
        "version": place.version,
        "location": place.prefix,
    }
    return [
        ("catalogue", CATALOG, f"its row for this release records {what} {row[what]!r}, not {want[what]!r}")
        for what in want
        if what in row and row[what] != want[what]
    ]


def _generations(store: ObjectStore, client_key: str) -> dict[int, bytes]:
    folder = join_key(client_key, catalog.GENERATIONS) + "/"
    found = (_GENERATION_NAME.match(k[len(folder) :]) for k in store.list(folder))
    return {int(m.group(1)): store.get(join_key(folder, m.group(0))) for m in found if m}


def _chain_problems(
    gens: dict[int, bytes],
    copy: bytes | None,
    client: str,
    keys: list[Ed25519PublicKey],
    signed_release: bool,
) -> list[tuple[str, str, str]]:
    """Every break in the chain of generations 1..N (and of the copy `catalog.parquet`). Once a
    generation is signed, or when the release is, the newest must be signed with one of `keys`."""
    metas = {n: catalog.generation_meta(data) for n, data in gens.items()}
    copy_gen = int(catalog.generation_meta(copy).get(b"kpdeliver.generation", b"0")) if copy else 0
    newest, problems = max([copy_gen, *gens]), []
    name = lambda n: f"{catalog.GENERATIONS}/{n:08d}.parquet"  # noqa: E731
    for n in range(1, newest + 1):
        if n not in gens:
            problems.append(("catalogue", name(n), f"generation {n} of {newest} is missing: deleted"))
            continue
        previous = metas[n].get(catalog.PREVIOUS, b"").decode()
        if n - 1 in gens and previous and previous != sha256_hex(gens[n - 1]):
            now = sha256_hex(gens[n - 1])
            problems.append(
                (
                    "catalogue",
                    name(n - 1),
                    f"altered: generation {n} recorded its sha256 as {previous[:16]}…, it is now {now[:16]}…",
                )
            )
    if copy and copy not in gens.values():
        problems.append(
            (
                "catalogue",
                CATALOG,
                f"is not a copy of any generation (it claims generation {copy_gen}): it was rewritten",
            )
        )
    must_sign = signed_release or any(catalog.SIGNATURE in m for m in metas.values())
    if newest in gens and keys and must_sign:
        problems += _signature_problems(gens[newest], client, newest, keys, name(newest))
    return problems


def _signature_problems(
    data: bytes, client: str, n: int, keys: list[Ed25519PublicKey], path: str
) -> list[tuple[str, str, str]]:
    """The newest generation must be signed with a release key: it vouches for every earlier one."""
    meta = catalog.generation_meta(data)
    if not meta.get(catalog.SIGNATURE):
        return [
            (
                "catalogue",
                path,
                f"the newest generation ({n}) is not signed, though the release key "
                f"{signing.key_ids(keys)} is known: it was written by someone without the key",
            )
        ]
    table, _ = catalog.parse_generation(data)
    body = catalog.statement(client, n, meta.get(catalog.PREVIOUS, b"").decode(), table)
    signer = meta.get(catalog.SIGNER, b"").decode() or None
    if signing.holding_key(keys, body, bytes.fromhex(meta[catalog.SIGNATURE].decode()), named=signer) is None:
        return [
            (
                "catalogue",
                path,
                f"the newest generation ({n}) is not signed by key {signing.key_ids(keys)} "
                f"(it names key {meta.get(catalog.SIGNER, b'?').decode()}): altered or forged",
            )
        ]
    return []


def check_catalogue(
    store: ObjectStore, client_key: str, place: Place, keys: list[Ed25519PublicKey], signed_release: bool
) -> CatalogueCheck:
    """The client's catalogue chain and its row for the release at `place` (`keys`: the release keys)."""
    result = CatalogueCheck()
    try:
        gens = _generations(store, client_key)
        copy_key = join_key(client_key, CATALOG)
        copy = store.get(copy_key) if store.exists(copy_key) else None
        if copy is None and not gens:
            return result
        result.listed = True
        result.problems = _chain_problems(gens, copy, place.client, keys, signed_release)
        result.row = catalog.catalogued_row(store, client_key, place.dataset, place.version)
    except StoreUnreachable:
        raise
    except (StorageError, ValueError, OSError) as e:  # a damaged catalogue is a finding, not a crash
        result.problems.append(("catalogue", CATALOG, f"cannot be read ({e})"))
        return result
    if result.row is None:
        result.problems.append(
            (
                "catalogue",
                CATALOG,
                f"the newest catalogue does not list {place.prefix}: a "
                "catalogue rolled back or a generation deleted (or a publication "
                "killed before its catalogue entry)",
            )
        )
    else:
        result.problems += _row_problems(result.row, place)
    return result


def release_keys(store: ObjectStore, client_key: str, pinned: signing.PublicKeys) -> list[Ed25519PublicKey]:
    """The keys the catalogue may be signed with: the pinned ones, else those published in the
    client's folder (a key that cannot be read is reported by the signature check)."""
    return signing.key_list(pinned) or signing.published_keys(store, client_key)


def bind(store: ObjectStore, prefix: str, manifest: dict, pinned: signing.PublicKeys) -> Binding:
    """The release under `prefix` against its place and its client's catalogue chain."""
    client, place, result = client_key(prefix), place_of(store, prefix), Binding()
    if place is None or client is None:
        result.notes.append(
            "the release's location is not …/<client>/<dataset>/v<NNNN>: its place was not checked"
        )
        return result
    result.problems = place_problems(manifest, place)
    signed = bool(manifest.get("signature")) or store.exists(join_key(prefix, signing.SIGNATURE))
    listed = check_catalogue(store, client, place, release_keys(store, client, pinned), signed)
    result.problems += listed.problems
    if listed.row:
        result.record = (listed.row["manifest_sha256"], listed.row.get("signing_key_id"))
    if not listed.listed:
        result.notes.append("the client has no catalogue: this release's manifest hash was not cross-checked")
    return result
