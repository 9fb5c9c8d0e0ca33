"""The delivery run, as a recipe: ingest -> assign -> collect -> validate -> quarantine -> package ->
stage -> publish -> catalogue. Every store access is a retried task in `tasks.store`."""
from __future__ import annotations

import pyarrow as pa
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.config import ClientConfig
from kpdeliver.findings import summary_by
from kpdeliver.release.publish import Published, input_fingerprint
from kpdeliver.storage import open_store
from tasks import compute, store


@flow(name="delivery-run")
def delivery_run(config: ClientConfig) -> dict:
    """One client delivery, from the batch at `config.source` to a published release."""
    log = get_run_logger()
    options = config.storage.model_dump(exclude_none=True)
    source, releases = open_store(config.source, options), open_store(config.releases, options)
    schema = resolve_schema(config.schema_name)

    ingested = store.ingest_batch(source)
    assignments = compute.assign_work(ingested.images, config.annotators, config.assignment)
    collected = store.collect_exports(source, ingested.images, schema, config.annotators, config.category)
    key = store.ReleaseKey(config.client, config.dataset,
                           input_fingerprint(config, ingested.images.sha256.tolist(), collected.files))

    duplicate = store.find_published(releases, key)
    if duplicate is not None:
        log.warning("inputs identical to published v%04d; not publishing a duplicate", duplicate.version)
        # a run killed after publishing but before these two steps is finished here
        store.rebuild_catalog(releases, config.client)
        store.clean_staging(releases, key)
        return _summary(duplicate, duplicate=True)

    if store.is_staged(releases, key):
        log.warning("resuming from a complete staging area for these inputs")
    else:
        validated = compute.validate(collected, ingested.findings, assignments, config.validation, config.deep_qa,
                                     tool_url=config.tool.url if config.tool else None)
        held = compute.quarantine(collected, assignments, validated.validation.findings, config.validation.quarantine)
        previous = store.previous_release(releases, config.client, config.dataset)
        plan = compute.package(config, held, validated, ingested.refused, assignments, source, previous)
        store.stage_release(plan, releases, source, key)
        _artifacts(validated.validation.findings, validated.validation.annotators, plan.verdict.to_dict())

    published = store.publish_release(releases, key, {
        "source": {"location": config.source, "images_listed": ingested.listed, "exports": collected.files},
        "schema": schema.to_dict()}, config.signing_key_secret)
    store.rebuild_catalog(releases, config.client)
    store.clean_staging(releases, key)
    return _summary(published, duplicate=False)


def _artifacts(findings: pa.Table, annotators: pa.Table | None, verdict: dict) -> None:
    for key, cols in (("findings-by-check", ("check", "severity")), ("findings-by-annotator", ("annotator", "severity")),
                      ("findings-by-keypoint", ("keypoint", "check"))):
        table = summary_by(findings, *cols)
        create_table_artifact(table=table.to_pylist() or [{c: None for c in (*cols, "count")}], key=key,
                              description=f"Findings by {cols[0]} (verdict: {verdict['verdict']})")
    if annotators is not None and annotators.num_rows:
        create_table_artifact(table=annotators.to_pylist(), key="annotator-scorecards",
                              description="Per-annotator agreement, gold score, flags and drift")


def _summary(release: Published, *, duplicate: bool) -> dict:
    manifest = release.manifest
    return {
        "release": release.location,
        "version": release.version,
        "duplicate_of_published": duplicate,
        "verdict": manifest.get("verdict"),
        "counts": manifest.get("counts", {}),
        "qa": manifest.get("qa", {}),
        "findings": f"{release.location}/qa/findings.parquet",
        "report": f"{release.location}/qa/report.html",
        "fingerprint": manifest.get("fingerprint"),
    }
