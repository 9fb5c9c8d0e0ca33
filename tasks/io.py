"""Tasks that touch storage: retried, because object stores fail transiently."""
from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from kpdeliver.collect import exports as collect
from kpdeliver.ingest import batch as ingest
from kpdeliver.release import catalog, publish
from kpdeliver.release.package import ReleasePlan
from kpdeliver.model import Dataset
from kpdeliver.storage import ObjectStore

IO = dict(retries=3, retry_delay_seconds=[1, 4, 10], cache_policy=NO_CACHE)


@task(name="ingest", **IO)
def ingest_batch(store: ObjectStore) -> ingest.IngestResult:
    return ingest.ingest_images(store)


@task(name="collect", **IO)
def collect_exports(store: ObjectStore, batch: Dataset, annotators: list[str]) -> collect.CollectResult:
    return collect.collect_exports(store, batch, annotators)


@task(name="stage", **IO)
def stage_release(plan: ReleasePlan, release_store: ObjectStore, source_store: ObjectStore, prefix: str) -> dict:
    return publish.stage(plan, release_store=release_store, source_store=source_store, prefix=prefix)


@task(name="publish", **IO)
def publish_release(store: ObjectStore, client: str, dataset: str, fingerprint: str, staged_prefix: str,
                    manifest_fields: dict) -> publish.Published:
    return publish.publish(store=store, client=client, dataset=dataset, fingerprint=fingerprint,
                           staged_prefix=staged_prefix, manifest_fields=manifest_fields)


@task(name="catalog", **IO)
def rebuild_catalog(store: ObjectStore, client: str) -> int:
    return catalog.rebuild_catalog(store, client).num_rows
