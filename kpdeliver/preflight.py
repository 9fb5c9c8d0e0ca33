"""The pre-flight: what a client's run needs, proved before the run starts (`kpdeliver check`, and
every command that runs a delivery). The schema file reads; the source lists, its first image
reads and the gold names are images; every annotator's folder lists and each of its exports opens;
the releases location takes a write (a probe object in the client's staging folder, removed
again). On S3 each of these resolves the credentials and reaches the endpoint, so missing
credentials, a missing bucket or a denied prefix are named here, not a minute into a run."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path

from kpdeliver.bounded import SCHEMA_MAX_BYTES, BoundsError, read_regular
from kpdeliver.config import ClientConfig, plural
from kpdeliver.storage import ObjectStore, StorageError, join_key, open_store

STAGING = ".staging"
PROBE_PREFIX = "preflight-"  # the probe's name in <releases>/.staging/<client>/
PROBED_EXPORTS = 256  # exports opened per annotator at most (on S3 each is a request)


def preflight_problems(config: ClientConfig) -> list[str]:
    """Plain sentences, one per thing a run of `config` would fail on."""
    options = config.storage.model_dump(exclude_none=True)
    return (
        schema_file_problems(config.schema_name)
        + batch_problems(config.source, options, config.assignment.gold, config.annotators)
        + releases_problems(config.releases, options, config.client)
    )


def schema_file_problems(schema: str) -> list[str]:
    from kpdeliver.schema import SchemaError, load_schema_yaml

    try:
        if schema.endswith((".yaml", ".yml")):
            load_schema_yaml(schema)
        elif schema.endswith(".xml"):  # read by its codec at the run; here: a regular file of bounded size
            read_regular(schema, what="schema file", limit=SCHEMA_MAX_BYTES)
    except FileNotFoundError:
        return [f"field 'schema': schema file {schema} does not exist"]
    except OSError as e:
        return [f"field 'schema': cannot read schema file {schema}: {e.strerror}"]
    except (SchemaError, BoundsError) as e:
        return [f"field 'schema': {e}"]
    return []


def batch_problems(
    source: str, options: dict, gold: Sequence[str], annotators: Sequence[str] = ()
) -> list[str]:
    """The source lists and reads, the gold names are images, every annotator's folder reads."""
    if "://" not in source and not Path(source).is_dir():
        return [f"field 'source': source folder {source} does not exist"]
    problems = []
    try:
        store = open_store(source, options)
        first = next(iter(store.list("images/")), None)
        if first is None:
            problems.append(
                f"field 'source': {source} has no images under images/ "
                "(expected images/… and annotations/<annotator>/…)"
            )
        else:
            with store.open(first) as fh:
                fh.read(1)
        missing = [g for g in gold if not store.exists(f"images/{g}")]
    except (StorageError, OSError) as e:
        return [*problems, f"field 'source': {source} cannot be read: {_cause(e)}"]
    if missing:
        problems.append(
            f"field 'assignment.gold': {plural(len(missing), 'name')} match no image under "
            f"{source}/images/: {', '.join(missing)}"
        )
    return problems + [p for a in annotators for p in _annotator_problems(store, a)]


def _annotator_problems(store: ObjectStore, annotator: str) -> list[str]:
    prefix = f"annotations/{annotator}/"
    try:
        for n, key in enumerate(store.list(prefix)):
            if n == PROBED_EXPORTS:
                break
            store.size(key)  # opens the file; on S3 a HEAD, which needs the read permission
    except (StorageError, OSError) as e:
        return [
            f"field 'annotators': the exports of {annotator} under {store.location(prefix)} cannot be read: "
            f"{_cause(e)}"
        ]
    return []


def releases_problems(releases: str, options: dict, client: str) -> list[str]:
    """The releases location takes a write: a probe object written to the client's staging folder and
    removed again (on a local store, the folders it made go with it)."""
    key = join_key(STAGING, client, f"{PROBE_PREFIX}{secrets.token_hex(8)}")
    made = [] if "://" in releases else _missing_folders(Path(releases))
    try:
        store = open_store(releases, options)
        store.put(key, b"kpdeliver pre-flight probe; removed at once\n")
        store.delete(key)
    except (StorageError, OSError) as e:
        return [f"field 'releases': {releases} does not take a write: {_cause(e)}"]
    finally:
        for folder in made:  # deepest first; one that is not empty now stays
            try:
                folder.rmdir()
            except OSError:
                break
    return []


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _cause(e: Exception) -> str:
    """A store error's own sentence; for a system error, what failed on which path."""
    if isinstance(e, OSError):
        return f"{e.strerror or type(e).__name__} ({e.filename})" if e.filename else (e.strerror or str(e))
    return str(e)
