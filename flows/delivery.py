"""The delivery run, as a recipe: ingest -> assign -> collect -> validate -> quarantine -> package ->
stage -> publish -> catalogue. Every store access is a retried task in `tasks.store`. Every task is
submitted, so it runs where the task runner puts it (a thread, or a Dask worker that needs only
the stores); tasks pass keys and small values. The run returns a typed DeliveryResult."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pyarrow as pa
from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_table_artifact

from flows import outcome, runner
from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.config import ClientConfig
from kpdeliver.findings import summary_by
from kpdeliver.ingest.batch import IngestResult, shard_keys
from kpdeliver.release import stage
from kpdeliver.release.layout import SIGNOFF
from kpdeliver.release.publish import ReleaseKey, input_fingerprint
from kpdeliver.release.result import DeliveryResult
from kpdeliver.storage import ObjectStore, open_store
from tasks import compute, store
from tasks.bulk import Bulk


def run_name(client: str, dataset: str) -> str:
    """`<client>-<dataset>-<UTC date>`: a flow run says whose delivery it is."""
    return f"{client}-{dataset}-{datetime.now(UTC):%Y-%m-%d}"


def _delivery_run_name() -> str:
    """`<client>-<dataset>-<date>`; as a deployment's subflow `…-delivery`, apart from its parent."""
    from prefect.context import FlowRunContext
    from prefect.runtime import flow_run

    config = flow_run.parameters.get("config")
    get = config.get if isinstance(config, dict) else lambda k: getattr(config, k, None)
    context = FlowRunContext.get()
    subflow = (
        context is not None
        and context.flow_run is not None
        and context.flow_run.parent_task_run_id is not None
    )
    return run_name(str(get("client")), str(get("dataset"))) + ("-delivery" if subflow else "")


def artifact_key(config: ClientConfig, what: str) -> str:
    """`<client>-<dataset>-<what>`, so clients never share an artifact; Prefect keys allow
    lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{config.client}-{config.dataset}-{what}".lower()).strip("-")


def delivery_run(config: ClientConfig) -> DeliveryResult:
    """One client delivery, on the task runner its `runner:` section names (threads by default)."""
    with runner.one_prefect_api(config.runner):
        # Prefect's stubs type a flow call as maybe-None and a runner's futures too narrowly
        flow = delivery_flow.with_options(task_runner=runner.task_runner_for(config.runner))  # type: ignore[arg-type]
        return flow(config)  # type: ignore[return-value]


@flow(name="delivery-run", flow_run_name=_delivery_run_name)
@outcome.reports_outcome(
    lambda config: outcome.Subject(
        config.client, config.dataset, config.storage.model_dump(exclude_none=True)
    )
)
@store.store_failures_fail_the_run
def delivery_flow(config: ClientConfig) -> DeliveryResult:
    """From the batch at `config.source` to a published release. Ingest and staging map over
    shards of the images; the steps that need the whole batch run once."""
    log = get_run_logger()
    options = config.storage.model_dump(exclude_none=True)
    source, releases = open_store(config.source, options), open_store(config.releases, options)
    schema = resolve_schema(config.schema_name)
    size = config.runner.shard_size

    listing = store.list_batch.submit(source).result()
    shards = shard_keys(listing.keys, size)
    probed = _results(
        store.probe_images.map(
            unmapped(source),
            [Bulk(s) for s in shards],
            [Bulk({k: listing.checksums[k] for k in s if k in listing.checksums}) for s in shards],
        )
    )
    ingested = compute.assemble_ingest.submit(probed, listing.skipped, source).result()
    assignments = compute.assign_work.submit(ingested.images, config.annotators, config.assignment)
    collected = store.collect_exports.submit(
        source, ingested.images, schema, config.annotators, config.category
    )
    exports = collected.result().files
    key = ReleaseKey(
        config.client, config.dataset, input_fingerprint(config, ingested.images.sha256.tolist(), exports)
    )

    duplicate = store.find_published.submit(releases, key).result()
    if duplicate is not None:
        log.warning("inputs identical to published v%04d; not publishing a duplicate", duplicate.version)
        # a run killed after publishing but before these two steps is finished here
        store.catalog_release.submit(releases, key, duplicate.version, config.signing_key_secret).result()
        store.clean_staging.submit(releases, key).result()
        return DeliveryResult.of(duplicate, duplicate=True)

    if store.is_staged.submit(releases, key).result():
        log.warning("resuming from a complete staging area for these inputs")
    else:
        _stage(config, key, source, releases, ingested, collected, assignments)

    published = store.publish_release.submit(
        releases,
        key,
        {
            "source": {"location": config.source, "images_listed": ingested.listed, "exports": exports},
            "schema": schema.to_dict(),
        },
        config.signing_key_secret,
    ).result()
    store.catalog_release.submit(releases, key, published.version, config.signing_key_secret).result()
    store.clean_staging.submit(releases, key).result()
    return DeliveryResult.of(published, duplicate=False)


def _stage(
    config: ClientConfig,
    key: ReleaseKey,
    source: ObjectStore,
    releases: ObjectStore,
    ingested: IngestResult,
    collected,
    assignments,
) -> None:
    """Validate, quarantine and package these inputs, and stage the release (the files, then the
    image shards, then the STAGED marker); runs inside the delivery flow, which it submits tasks to."""
    validated = compute.validate.submit(
        collected,
        ingested.findings,
        assignments,
        config.validation,
        config.deep_qa,
        tool_url=config.tool.url if config.tool else None,
    )
    findings = validated.result().findings
    held = compute.quarantine.submit(collected, assignments, findings, config.validation.quarantine)
    previous = store.previous_release.submit(releases, config.client, config.dataset)
    # Prefect's stubs take no futures as arguments
    plan = compute.package.submit(  # type: ignore[call-overload]
        config, held, validated, ingested.refused, assignments, source, previous
    ).result()
    files, image_shards = stage.split_plan(plan, config.runner.shard_size)
    staged = store.stage_files.submit(releases, key, files)
    shard_listings = _results(
        store.stage_shard.map(
            unmapped(releases), unmapped(source), unmapped(key), [Bulk(s) for s in image_shards]
        )
    )
    listed = staged.result()
    for shard_listing in shard_listings:
        listed |= shard_listing
    store.mark_staged.submit(
        releases, key, plan.counts, plan.verdict, Bulk(listed), plan.files.get(SIGNOFF)
    ).result()
    _artifacts(config, findings, validated.result().annotators, plan.verdict.to_dict())


def _results(futures) -> list:
    return [f.result() for f in futures]


def _artifacts(config: ClientConfig, findings: pa.Table, annotators: pa.Table | None, verdict: dict) -> None:
    for key, cols in (
        ("findings-by-check", ("check", "severity")),
        ("findings-by-annotator", ("annotator", "severity")),
        ("findings-by-keypoint", ("keypoint", "check")),
    ):
        table = summary_by(findings, *cols)
        create_table_artifact(
            table=table.to_pylist() or [dict.fromkeys((*cols, "count"))],
            key=artifact_key(config, key),
            description=f"Findings by {cols[0]} (verdict: {verdict['verdict']})",
        )
    if annotators is not None and annotators.num_rows:
        create_table_artifact(
            table=annotators.to_pylist(),
            key=artifact_key(config, "annotator-scorecards"),
            description="Per-annotator agreement, gold score, flags and drift",
        )
