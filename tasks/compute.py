"""Tasks that compute: assignment, validation, quarantine, packaging. Deterministic, so not
retried; not cached either (their inputs are large in-memory tables; a killed run resumes from
the release's staging area, keyed on the input fingerprint)."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from kpdeliver.assign import assignments as assign
from kpdeliver.collect.exports import CollectResult
from kpdeliver.config import Assignment, ClientConfig, DeepQASettings, QuarantineScope, ValidationSettings
from kpdeliver.ingest import batch as ingest
from kpdeliver.ingest.batch import IngestResult
from kpdeliver.model import Images, parquet_bytes
from kpdeliver.release.package import ReleasePlan, finish_plan, package_release
from kpdeliver.release.quarantine import Quarantined, quarantine_delivery
from kpdeliver.report.changes import PreviousRelease, ReleaseTables, release_changes
from kpdeliver.report.html import ReportHeader, ReportInputs, render_report
from kpdeliver.rework.ledger import Ledger
from kpdeliver.rework.status import ReleaseRework, release_rework, with_rework_counts
from kpdeliver.storage import ObjectStore
from kpdeliver.validation import Validation, validate_delivery

COMPUTE: dict[str, Any] = {"cache_policy": NO_CACHE}


@task(name="assemble-ingest", **COMPUTE)
def assemble_ingest(
    probes: list[pa.Table], skipped: list[tuple[str, str, str]], source: ObjectStore
) -> IngestResult:
    """The batch from its shards' probes: duplicates dropped, ids numbered in key order."""
    table = pa.concat_tables(probes) if probes else ingest.PROBE_SCHEMA.empty_table()  # a batch with no image
    return ingest.assemble_ingest(table, skipped=skipped, location=source.location)


@task(name="assign-work", **COMPUTE)
def assign_work(images: Images, annotators: list[str], assignment: Assignment) -> pa.Table:
    """Which annotator labels which image, in which role (primary, overlap, gold)."""
    return assign.assign_annotators(images, annotators, assignment)


@task(name="validate", **COMPUTE)
def validate(
    collected: CollectResult,
    ingest_findings: pa.Table,
    assignments: pa.Table,
    settings: ValidationSettings,
    deep_qa: DeepQASettings,
    tool_url: str | None = None,
) -> Validation:
    """Row rules and deep QA (kpdeliver.validation `validate_delivery`); the rules' GX results in the Validation."""
    return validate_delivery(collected, ingest_findings, assignments, settings, deep_qa, tool_url=tool_url)


@task(name="quarantine", **COMPUTE)
def quarantine(
    collected: CollectResult, assignments: pa.Table, findings: pa.Table, scope: QuarantineScope
) -> Quarantined:
    """What may be delivered, and the instances (or whole images) held back (release.quarantine)."""
    return quarantine_delivery(collected, assignments, findings, scope)


def report_header(config: ClientConfig, previous: PreviousRelease | None) -> ReportHeader:
    """The report's identity: the version publication takes next (manifest.json records the one it took),
    today's date (UTC), the code version, and the signing key's fingerprint when one is configured."""
    from datetime import UTC, datetime

    from kpdeliver import __version__
    from kpdeliver.release.signing import fingerprint
    from tasks.store import signing_key

    key = signing_key(config.signing_key_secret)
    return ReportHeader(
        config.client,
        config.dataset,
        version=(previous.version + 1) if previous else 1,
        published=f"{datetime.now(UTC):%Y-%m-%d}",
        code_version=__version__,
        signed=key is not None,
        key_fingerprint=fingerprint(key) if key is not None else None,
    )


# Packaging reads the images it draws in the report from the source store: retried like the store tasks
# (it is deterministic, so a retry writes the same plan).
@task(name="package", retries=3, retry_delay_seconds=[1, 4, 10], cache_policy=NO_CACHE)
def package(
    config: ClientConfig,
    held: Quarantined,
    validated: Validation,
    refused: pa.Table,
    assignments: pa.Table,
    source: ObjectStore,
    previous: PreviousRelease | None,
) -> ReleasePlan:
    """Every release file in memory, the QA report and sign-off included (images become copies).
    `refused`: the images refused at ingest (file_name, status); `previous`: the newest published
    release of this dataset, which the release notes compare with."""
    from kpdeliver.qa.sigmas import sigmas_files

    qa = validated
    rework = release_rework(
        Ledger.load(source), held.reviewed, held.table, qa.findings
    )  # tasks/rework/ledger.json
    plan = package_release(
        config=config,
        dataset=held.candidates,
        delivered=held.delivered,
        findings=qa.findings,
        quarantine=held.table,
        image_quarantined=held.images,
        ingest_rejected=refused,
        assignments=assignments,
        annotators=with_rework_counts(qa.annotators, rework.status),
        extra_files={
            "qa/validation_results.json": validated.results_json,
            "qa/keypoints.parquet": parquet_bytes(qa.keypoints),
            **sigmas_files(qa.sigmas),
        }
        | ({"qa/rework.parquet": parquet_bytes(rework.status)} if rework.status.num_rows else {}),
        instances_in=held.instances_in,
        review_only=held.review_only,
        reviewed=held.reviewed.subset_instances(held.reviewed.instances.annotator != "gold"),
        rework_rate=rework.rate,
    )
    changes = _changes(plan, previous, rework.changes)
    plan.files["qa/changes.parquet"] = parquet_bytes(changes)
    finish_plan(plan, _report(config, plan, held, validated, source, previous, changes, rework))
    return plan


def _changes(plan: ReleasePlan, previous: PreviousRelease | None, rework_changes: pa.Table) -> pa.Table:
    """What changed since the previous release (qa/changes.parquet), the rework's changes included."""
    changes = release_changes(
        ReleaseTables(plan.tables["index/images.parquet"], plan.tables["index/annotations.parquet"]),
        previous.tables if previous else None,
    )
    return pa.concat_tables([changes, rework_changes.cast(changes.schema)])


def _report(
    config: ClientConfig,
    plan: ReleasePlan,
    held: Quarantined,
    validated: Validation,
    source: ObjectStore,
    previous: PreviousRelease | None,
    changes: pa.Table,
    rework: ReleaseRework,
) -> str:
    """The release's QA report (qa/report.html); its images are read from the source store."""
    qa = validated
    source_key = dict(zip(held.reviewed.images.file_name.tolist(), held.reviewed.images.source.tolist()))
    return render_report(
        ReportInputs(
            qa.findings,
            title=f"{config.client} / {config.dataset} — QA report",
            summary=plan.counts.to_dict(),
            header=report_header(config, previous),
            signoff=plan.verdict.to_dict(),
            annotators=qa.annotators,
            keypoints=qa.keypoints,
            reviewed=held.reviewed,
            delivered=held.delivered,
            image_bytes=lambda name: source.get(source_key[name]),
            changes=changes,
            previous_version=previous.version if previous else None,
            validation_results=orjson.loads(validated.results_json),
            min_gold_oks=config.qa.min_gold_oks,
            deep_qa=config.deep_qa,
            seed=config.assignment.seed,
            annotator_names=config.report.annotators,
            known_annotators=tuple(config.annotators),
            rework=rework.report if rework.status.num_rows else None,
            sigmas=qa.sigmas.table if qa.sigmas else None,
        )
    )
