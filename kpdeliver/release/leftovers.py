"""What failed or killed runs leave in a releases store, and which of it is safe to remove
(`kpdeliver clean`).

A run stages under `.staging/<client>/<dataset>/<fingerprint[:24]>/<run>/` (the run id starts
with its UTC start time) and removes its inputs' staging once their release is published. A run
killed before that leaves its folder, which is:

- **needed** when a claim `<client>/<dataset>/.claims/fp-<fingerprint>` names it and the claimed
  version has no manifest yet: an unfinished publication, finished by running the same delivery
  again (never removed here);
- **done** when the inputs' release is published (the run died while cleaning up): removable;
- **stale** when nothing claims it and it is older than the given age: removable (a run of the
  same inputs would resume from it, so the age must exceed any run's duration);
- **recent** otherwise: a run may still be writing it; kept.

On a local folder, publication renames the claimed staging folder to `<client>/<dataset>/v<NNNN>/`
with its STAGED marker, removed once the manifest is written. A marker found there is:

- **needed** when the version has no manifest: the run died between the rename and the manifest;
  running the same delivery again finishes it from there (never removed here);
- **done** when the manifest is written (the run died just before removing it): the marker
  alone is removable, never the release.

Claims (`.claims/v<NNNN>`, `.claims/fp-<fingerprint>`) are never removed: they are the record that
keeps every version number and every set of inputs taken once, a few hundred bytes each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from kpdeliver.release.layout import CLAIMS, MANIFEST, STAGED, STAGING, release_prefix
from kpdeliver.storage import LocalStore, ObjectStore, StorageError, join_key

_RUN_TIME = "%Y%m%dT%H%M%S"
_MOVED_MARKER = re.compile(rf"^[^/]+/[^/]+/v\d{{4,}}/{STAGED}$")


@dataclass(frozen=True)
class Leftover:
    folder: str  # the staging run folder's key (or a release folder's STAGED marker), from the releases root
    state: str  # needed | done | stale | recent
    why: str
    files: int
    marker: bool = False  # a moved STAGED marker in a release folder: only that file is ever removed

    @property
    def removable(self) -> bool:
        return self.state in ("done", "stale")


def _run_folders(store: ObjectStore, client: str | None) -> dict[str, int]:
    """Staging run folder -> number of files in it."""
    base = join_key(STAGING, client) + "/" if client else STAGING + "/"
    folders: dict[str, int] = {}
    for key in store.list(base):
        parts = key[len(STAGING) + 1 :].split("/")
        if len(parts) >= 5:  # client/dataset/fingerprint/run/file
            folder = join_key(STAGING, *parts[:4])
            folders[folder] = folders.get(folder, 0) + 1
    return folders


def _claims(store: ObjectStore, client: str, dataset: str, fp24: str) -> list[dict]:
    folder = join_key(client, dataset, CLAIMS) + "/"
    found = []
    for key in store.list(folder):
        if key[len(folder) :].startswith(f"fp-{fp24}"):
            try:
                found.append(orjson.loads(store.get(key)) | {"fingerprint": key[len(folder) + 3 :]})
            except (orjson.JSONDecodeError, StorageError):
                continue
    return found


def _age(run: str, now: datetime) -> float | None:
    try:
        started = datetime.strptime(run.split("-", 1)[0], _RUN_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None
    return (now - started).total_seconds()


def _judge(store: ObjectStore, folder: str, files: int, older_than: float, now: datetime) -> Leftover:
    client, dataset, fp24, run = folder.split("/")[1:5]
    for claim in _claims(store, client, dataset, fp24):
        version = claim.get("version")
        published = isinstance(version, int) and store.exists(
            join_key(release_prefix(client, dataset, version), MANIFEST)
        )
        if published:
            return Leftover(
                folder, "done", f"its inputs are published as {client}/{dataset} v{version:04d}", files
            )
        if claim.get("staging") == folder:
            return Leftover(
                folder,
                "needed",
                "an unfinished publication resumes from it: run the same delivery again to finish it",
                files,
            )
    age = _age(run, now)
    if age is not None and age >= older_than:
        return Leftover(
            folder, "stale", f"nothing claims it and it was started {age / 3600:.1f} h ago", files
        )
    return Leftover(folder, "recent", "younger than the given age: a run may still be writing it", files)


def _moved_markers(store: ObjectStore, client: str | None) -> list[Leftover]:
    """The STAGED markers a publication's rename left in release folders (of `client`, or of all);
    only a local folder publishes by renaming."""
    found: list[Leftover] = []
    if not isinstance(store, LocalStore):
        return found
    for key in store.list(client + "/" if client else ""):
        if _MOVED_MARKER.match(key):
            release = key.rsplit("/", 1)[0]
            if store.exists(join_key(release, MANIFEST)):
                found.append(
                    Leftover(key, "done", f"{release} is published; only this marker is left", 1, True)
                )
            else:
                why = "an unfinished publication: run the same delivery again to finish it"
                found.append(Leftover(key, "needed", why, 1, True))
    return found


def find_leftovers(
    store: ObjectStore, client: str | None = None, *, older_than: float = 86400, now: datetime | None = None
) -> list[Leftover]:
    """Every staging run folder and moved STAGED marker (of `client`, or of all clients) and what
    may be done with it."""
    now = now or datetime.now(UTC)
    staging = [
        _judge(store, folder, n, older_than, now) for folder, n in sorted(_run_folders(store, client).items())
    ]
    return staging + _moved_markers(store, client)


def remove_leftovers(store: ObjectStore, leftovers: list[Leftover]) -> int:
    """Remove the removable folders and markers; the number of files removed."""
    removed = 0
    for f in (f for f in leftovers if f.removable):
        if f.marker:
            store.delete(f.folder)
            removed += 1
        else:
            removed += store.delete_prefix(f.folder + "/")
    return removed
