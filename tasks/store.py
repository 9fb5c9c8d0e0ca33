"""Tasks that touch a store: each is retried, because object stores fail transiently, and each is
safe to run again (reads, overwrites of the same bytes, the publication's claim protocol).
Stores travel as `ObjectStore` handles, which pickle as their location without a connection."""
from __future__ import annotations

from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from kpdeliver.collect import exports as collect
from kpdeliver.ingest import batch as ingest
from kpdeliver.model import Dataset, Images, Instances
from kpdeliver.progress import stage
from kpdeliver.release import catalog, publish
from kpdeliver.release.layout import read_manifest, release_prefix
from kpdeliver.release.package import ReleasePlan
from kpdeliver.schema import KeypointSchema
from kpdeliver.storage import ObjectStore, join_key

STORE = dict(retries=3, retry_delay_seconds=[1, 4, 10], cache_policy=NO_CACHE)


@dataclass(frozen=True)
class ReleaseKey:
    """The release a run builds: a client's dataset and the fingerprint of the run's inputs."""

    client: str
    dataset: str
    fingerprint: str

    @property
    def staging(self) -> str:
        return publish.staging_prefix(self.client, self.dataset, self.fingerprint)


@task(name="ingest", **STORE)
def ingest_batch(source: ObjectStore) -> ingest.IngestResult:
    return ingest.ingest_images(source)


@task(name="collect", **STORE)
def collect_exports(source: ObjectStore, images: Images, schema: KeypointSchema,
                    annotators: list[str]) -> collect.CollectResult:
    batch = Dataset(schema, images, Instances.empty(schema.num_keypoints))
    return collect.collect_exports(source, batch, annotators)


@task(name="find-published", **STORE)
def find_published(releases: ObjectStore, key: ReleaseKey) -> publish.Published | None:
    """The release already published from exactly these inputs, if any."""
    version = publish.find_duplicate(releases, key.client, key.dataset, key.fingerprint)
    if version is None:
        return None
    prefix = join_key(key.client, key.dataset, f"v{version:04d}")
    return publish.Published(version, prefix, releases.location(prefix),
                             read_manifest(releases, release_prefix(key.client, key.dataset, version)))


@task(name="is-staged", **STORE)
def is_staged(releases: ObjectStore, key: ReleaseKey) -> bool:
    """Whether a complete staging area for these inputs exists (a killed run's, to resume from)."""
    return publish.read_staged(releases, key.staging) is not None


@task(name="stage", **STORE)
def stage_release(plan: ReleasePlan, releases: ObjectStore, source: ObjectStore, key: ReleaseKey) -> None:
    files = len(plan.files) + len(plan.copies)
    with stage("staging", files) as staging:
        publish.stage(plan, release_store=releases, source_store=source, prefix=key.staging)
        staging.advance(files)


@task(name="publish", **STORE)
def publish_release(releases: ObjectStore, key: ReleaseKey, manifest_fields: dict) -> publish.Published:
    with stage("publishing", 1) as publishing:
        published = publish.publish(store=releases, client=key.client, dataset=key.dataset,
                                    fingerprint=key.fingerprint, staged_prefix=key.staging,
                                    manifest_fields=manifest_fields)
        publishing.advance()
    return published


@task(name="catalog", **STORE)
def catalog_release(releases: ObjectStore, key: ReleaseKey, version: int) -> int:
    """Append the published release to the client's catalogue (a conditional write, no listing);
    the number of releases it lists."""
    return catalog.append_release(releases, key.client, key.dataset, version).num_rows


@task(name="clean-staging", **STORE)
def clean_staging(releases: ObjectStore, key: ReleaseKey) -> None:
    publish.clean_staging(releases, key.staging)
