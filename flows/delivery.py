"""The delivery run, as a recipe: ingest -> split -> collect -> validate -> package -> publish."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from kpdeliver.release.layout import read_manifest, release_prefix
from kpdeliver.release.package import finish_plan
from kpdeliver.release.publish import clean_staging, find_duplicate, input_fingerprint, read_staged, staging_prefix
from kpdeliver.release.quarantine import hold_back
from kpdeliver.collect.exports import assignment_findings, delivery_candidates
from kpdeliver.config import ClientConfig
from kpdeliver.findings import concat_findings, summary_by
from kpdeliver.model import Dataset, Instances, parquet_bytes
from kpdeliver.report.html import render_report
from kpdeliver.codecs.resolve import resolve_schema

from kpdeliver.storage import open_store
from tasks import compute, io


def _ingest_rejected(findings: pa.Table, keys: list[str]) -> pa.Table:
    """Index rows for images refused at ingest (duplicate, unreadable, unsafe, corrupted)."""
    check_of = dict(zip(findings["source"].to_pylist(), findings["check"].to_pylist()))
    return pa.table({
        "file_name": pa.array([k.removeprefix("images/") for k in keys], pa.string()),
        "status": pa.array([check_of.get(k, "rejected").split(".")[-1] for k in keys], pa.string()),
    })


def _artifacts(findings: pa.Table, annotators: pa.Table | None, verdict: dict) -> None:
    for key, cols in (("findings-by-check", ("check", "severity")), ("findings-by-annotator", ("annotator", "severity")),
                      ("findings-by-keypoint", ("keypoint", "check"))):
        table = summary_by(findings, *cols)
        create_table_artifact(table=table.to_pylist() or [{c: None for c in (*cols, "count")}], key=key,
                              description=f"Findings by {cols[0]} (verdict: {verdict['verdict']})")
    if annotators is not None and annotators.num_rows:
        create_table_artifact(table=annotators.to_pylist(), key="annotator-scorecards",
                              description="Per-annotator agreement, gold score, flags and drift")


@flow(name="delivery-run")
def delivery_run(config: ClientConfig) -> dict:
    """One client delivery, from the batch at `config.source` to a published release."""
    log = get_run_logger()
    options = config.storage.model_dump(exclude_none=True)
    source = open_store(config.source, options)
    releases = open_store(config.releases, options)
    schema = resolve_schema(config.schema_name)

    ingested = io.ingest_batch(source)
    batch = Dataset(schema, ingested.images, Instances.empty(schema.num_keypoints))
    assignments = compute.split_work(ingested.images, config)
    collected = io.collect_exports(source, batch, config.annotators)

    fingerprint = input_fingerprint(config, ingested.images.sha256.tolist(), collected.files)
    duplicate = find_duplicate(releases, config.client, config.dataset, fingerprint)
    if duplicate is not None:
        manifest = read_manifest(releases, release_prefix(config.client, config.dataset, duplicate))
        log.warning("inputs identical to published v%04d; not publishing a duplicate", duplicate)
        # a run killed after publishing but before these two steps is finished here
        io.rebuild_catalog(releases, config.client)
        clean_staging(releases, staging_prefix(config.client, config.dataset, fingerprint))
        return _summary(releases, config, duplicate, manifest, duplicate=True)

    staged = staging_prefix(config.client, config.dataset, fingerprint)
    if read_staged(releases, staged) is None:
        with tempfile.TemporaryDirectory(prefix="kpdeliver-docs-") as docs:
            report = compute.validate_rules(collected.everything, config.validation, Path(docs))
            qa = compute.deep_qa(collected.dataset, collected.gold, config)
            docs_files = {f"qa/data_docs/{p.relative_to(docs).as_posix()}": p.read_bytes()
                          for p in Path(docs).rglob("*") if p.is_file()}
        findings = concat_findings([ingested.findings, collected.findings,
                                    assignment_findings(collected.dataset, assignments), report.findings, qa.findings])
        candidates, review_only = delivery_candidates(collected, assignments)
        delivered, quarantine, image_q = hold_back(
            candidates, findings, collected.rejected, config.validation.quarantine)
        plan = compute.package(
            config=config, dataset=candidates, delivered=delivered, findings=findings, quarantine=quarantine,
            image_quarantined=image_q, ingest_rejected=_ingest_rejected(ingested.findings, ingested.rejected_keys),
            assignments=assignments, annotators=qa.annotators,
            extra_files={**docs_files, "qa/keypoints.parquet": parquet_bytes(qa.keypoints)},
            instances_in=len(collected.dataset.instances) + collected.rejected.num_rows
            + (len(collected.gold.instances) if collected.gold is not None else 0),
            review_only=review_only,
        )
        finish_plan(plan, render_report(
            findings, title=f"{config.client} / {config.dataset} — QA report",
            summary={**plan.counts.to_dict(), "verdict": plan.verdict.verdict, "reasons": list(plan.verdict.reasons)},
            annotators=qa.annotators))
        io.stage_release(plan, releases, source, staged)
        _artifacts(findings, qa.annotators, plan.verdict.to_dict())
    else:
        log.warning("resuming from a complete staging area for these inputs")

    published = io.publish_release(releases, config.client, config.dataset, fingerprint, staged,
                                   {"source": {"location": config.source, "images_listed": ingested.listed,
                                               "exports": collected.files}, "schema": schema.to_dict()})
    io.rebuild_catalog(releases, config.client)
    clean_staging(releases, staged)
    return _summary(releases, config, published.version, published.manifest, duplicate=False)


def _summary(store, config: ClientConfig, version: int, manifest: dict, *, duplicate: bool) -> dict:
    prefix = f"{config.client}/{config.dataset}/v{version:04d}"
    return {
        "release": store.location(prefix),
        "version": version,
        "duplicate_of_published": duplicate,
        "verdict": manifest.get("verdict"),
        "counts": manifest.get("counts", {}),
        "qa": manifest.get("qa", {}),
        "findings": store.location(prefix + "/qa/findings.parquet"),
        "report": store.location(prefix + "/qa/report.html"),
        "fingerprint": manifest.get("fingerprint"),
    }

