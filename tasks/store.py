"""Tasks that touch a store: each is retried, because object stores fail transiently, and each is
safe to run again (reads, overwrites of the same bytes, the publication's claim protocol).
Stores travel as `ObjectStore` handles, which pickle as their location without a connection."""

from __future__ import annotations

import functools
import inspect
import logging
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from kpdeliver.collect import exports as collect
from kpdeliver.errors import KpdeliverError, said
from kpdeliver.ingest import batch as ingest
from kpdeliver.model import Dataset, Images, Instances
from kpdeliver.progress import stage as progress_stage
from kpdeliver.release import catalog, publish, signing, stage
from kpdeliver.release.layout import read_manifest, release_prefix
from kpdeliver.release.publish import ReleaseKey
from kpdeliver.release.signoff import Counts, Verdict
from kpdeliver.report.changes import PreviousRelease, ReleaseTables
from kpdeliver.schema import KeypointSchema
from kpdeliver.storage import ObjectStore, join_key
from kpdeliver.storage.errors import retryable
from tasks.bulk import Bulk


def _worth_retrying(task, task_run, state) -> bool:
    """Retry what may pass (an unreachable store, a server error), never a store's definite refusal."""
    return not isinstance(state.data, BaseException) or retryable(state.data)


STORE: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [1, 4, 10],
    "cache_policy": NO_CACHE,
    "retry_condition_fn": _worth_retrying,
}
_FAILED_ON_STORE = re.compile(r"encountered (?:an|unexpected) exception:? \W*(\w+)")


class StoreFailureLogs(logging.Filter):
    """Prefect logs a task's exception with its traceback, and its final state, at ERROR. A failure
    kpdeliver expects (a KpdeliverError: a store's StorageError, a refused input, tool or release)
    is said once, by the flow run's Failed state and the command line, in its own sentence: those
    records are left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if record.exc_info and isinstance(record.exc_info[1], KpdeliverError):
            return False
        found = _FAILED_ON_STORE.search(record.getMessage())
        return not (found and found.group(1) in _store_error_names(KpdeliverError))


def _store_error_names(cls: type) -> set[str]:
    names = {cls.__name__}
    subclasses: list[type] = cls.__subclasses__()
    for sub in subclasses:
        names |= _store_error_names(sub)
    return names


def quiet_store_tracebacks() -> None:
    """Install StoreFailureLogs on Prefect's run loggers (once per process)."""
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, StoreFailureLogs) for f in logger.filters):
            logger.addFilter(StoreFailureLogs())


def store_failures_fail_the_run(flow_fn):
    """Decorates a flow function: a failure kpdeliver expects (a KpdeliverError, such as a store's)
    ends the flow run Failed with its one sentence (kpdeliver.errors `said`, as the command line
    says it) as its message, no traceback logged; calling the flow raises the exception."""

    @functools.wraps(flow_fn)
    def run(*args, **kwargs):
        quiet_store_tracebacks()
        try:
            return flow_fn(*args, **kwargs)
        except KpdeliverError as e:  # a store, tool, input or release failure: its one sentence
            return Failed(message=said(e)[0], data=e)

    # the flow's parameters, their annotations resolved where it was written (Prefect validates them)
    run.__signature__ = inspect.signature(flow_fn, eval_str=True)
    return run


quiet_store_tracebacks()  # also in worker processes (Dask), which import this module to run its tasks


@dataclass(frozen=True)
class BatchListing:
    """What ingest reads, before any image is: the image keys, the entries never read (links,
    special files: `ingest.skipped_entries`) and the expected sha256 per key of `checksums.sha256`."""

    keys: list[str]
    skipped: list[tuple[str, str, str]]
    checksums: dict[str, str]


@task(name="list-batch", **STORE)
def list_batch(source: ObjectStore) -> BatchListing:
    return BatchListing(
        ingest.list_image_keys(source), ingest.skipped_entries(source), ingest.read_checksums(source)
    )


@task(name="probe-images", **STORE)
def probe_images(source: ObjectStore, keys: Bulk[list[str]], checksums: Bulk[dict[str, str]]) -> pa.Table:
    """Hash and header-check one shard of the batch's images: a small `ingest.PROBE_SCHEMA` table."""
    return ingest.probe_images(source, keys.value, checksums.value)


@task(name="collect", **STORE)
def collect_exports(
    source: ObjectStore,
    images: Images,
    schema: KeypointSchema,
    annotators: list[str],
    category: str | None = None,
) -> collect.CollectResult:
    batch = Dataset(schema, images, Instances.empty(schema.num_keypoints))
    return collect.collect_exports(source, batch, annotators, category=category)


@task(name="find-published", **STORE)
def find_published(releases: ObjectStore, key: ReleaseKey) -> publish.Published | None:
    """The release already published from exactly these inputs, if any."""
    version = publish.find_duplicate(releases, key.client, key.dataset, key.fingerprint)
    if version is None:
        return None
    prefix = join_key(key.client, key.dataset, f"v{version:04d}")
    return publish.Published(
        version,
        prefix,
        releases.location(prefix),
        read_manifest(releases, release_prefix(key.client, key.dataset, version)),
    )


@task(name="is-staged", **STORE)
def is_staged(releases: ObjectStore, key: ReleaseKey) -> bool:
    """Whether a complete staging area for these inputs exists (a killed run's, to resume from)."""
    return (
        publish.find_staged(releases, key.client, key.dataset, key.fingerprint, prefer=key.staging)
        is not None
    )


@task(name="stage-files", **STORE)
def stage_files(releases: ObjectStore, key: ReleaseKey, files: dict[str, bytes]) -> dict[str, dict]:
    """The release's global files (COCO, indexes, QA); their STAGED listing entries."""
    return stage.stage_files(releases, key.staging, files)


@task(name="stage-shard", **STORE)
def stage_shard(
    releases: ObjectStore, source: ObjectStore, key: ReleaseKey, bulk: Bulk[stage.StageShard]
) -> dict[str, dict]:
    """One shard's images (read once, checked against ingest's hash) and YOLO label files; the listing."""
    shard = bulk.value
    with progress_stage("staging", len(shard.copies)) as staging:
        listing = stage.stage_copies(releases, source, key.staging, shard.copies)
        staging.advance(len(shard.copies))
    return listing | stage.stage_files(releases, key.staging, shard.files)


@task(name="mark-staged", **STORE)
def mark_staged(
    releases: ObjectStore,
    key: ReleaseKey,
    counts: Counts,
    verdict: Verdict,
    listing: Bulk[dict[str, dict]],
    signoff: bytes | None,
) -> None:
    """The STAGED marker of this run's staging folder, once every shard is in (`signoff`: the plan's qa/signoff.json)."""
    stage.mark_staged(releases, key.staging, counts, verdict, listing.value, signoff)


def signing_key(secret_block: str | None):
    """The vendor's signing key: from the Prefect Secret block `secret_block` when the config names
    one, else from the environment (None: releases are published unsigned). Looked up inside the
    task, so the key is never a task parameter, a result or a log line."""
    if not secret_block:
        return signing.key_from_environment()
    from prefect.blocks.system import Secret

    block: Any = Secret.load(secret_block)  # sync here (Prefect's sync_compatible returns the block)
    return signing.private_key_from_pem(block.get(), origin=f"Prefect Secret block {secret_block!r}")


@task(name="publish", **STORE)
def publish_release(
    releases: ObjectStore, key: ReleaseKey, manifest_fields: dict, signing_secret: str | None = None
) -> publish.Published:
    staged = publish.find_staged(releases, key.client, key.dataset, key.fingerprint, prefer=key.staging)
    with progress_stage("publishing", 1) as publishing:
        published = publish.publish(
            store=releases,
            client=key.client,
            dataset=key.dataset,
            fingerprint=key.fingerprint,
            staged_prefix=staged or key.staging,
            manifest_fields=manifest_fields,
            signing_key=signing_key(signing_secret),
        )
        publishing.advance()
    return published


@task(name="previous-release", **STORE)
def previous_release(releases: ObjectStore, client: str, dataset: str) -> PreviousRelease | None:
    """The index tables of the newest published release of this dataset (for the release notes)."""
    versions = publish.published_versions(releases, client, dataset)
    if not versions:
        return None
    prefix = join_key(release_prefix(client, dataset, versions[-1]), "index")
    tables = [
        pq.read_table(pa.BufferReader(releases.get(join_key(prefix, name))))
        for name in ("images.parquet", "annotations.parquet")
    ]
    return PreviousRelease(versions[-1], ReleaseTables(*tables))


@task(name="catalog", **STORE)
def catalog_release(
    releases: ObjectStore, key: ReleaseKey, version: int, signing_secret: str | None = None
) -> int:
    """Append the published release to the client's catalogue (a conditional write, no listing),
    signed with the release key when there is one; the number of releases it lists."""
    return catalog.append_release(
        releases, key.client, key.dataset, version, signing_key(signing_secret)
    ).num_rows


@task(name="clean-staging", **STORE)
def clean_staging(releases: ObjectStore, key: ReleaseKey) -> None:
    publish.clean_staging(releases, key.client, key.dataset, key.fingerprint)
