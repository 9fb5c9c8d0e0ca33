"""Tasks that compute: split, validate, deep QA, package. No retries (deterministic)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from kpdeliver.assign import assignments as assign
from kpdeliver.release.package import ReleasePlan, package_release
from kpdeliver.config import ClientConfig, ValidationSettings
from kpdeliver.model import Dataset, Images

COMPUTE = dict(cache_policy=NO_CACHE)


@task(name="split", **COMPUTE)
def split_work(images: Images, config: ClientConfig) -> pa.Table:
    return assign.assign_annotators(images, config.annotators, config.assignment)


@task(name="validate", **COMPUTE)
def validate_rules(dataset: Dataset, settings: ValidationSettings, docs_dir: Path | None):
    from expectations import validate_dataset

    return validate_dataset(dataset, settings, docs_dir=docs_dir)


@task(name="deep-qa", **COMPUTE)
def deep_qa(dataset: Dataset, gold: Dataset | None, config: ClientConfig):
    from kpdeliver.qa import run_deep_qa

    return run_deep_qa(dataset, gold=gold, settings=config.deep_qa)


@task(name="package", **COMPUTE)
def package(
    *,
    config: ClientConfig,
    dataset: Dataset,
    delivered: Dataset,
    findings: pa.Table,
    quarantine: pa.Table,
    image_quarantined: np.ndarray,
    ingest_rejected: pa.Table,
    assignments: pa.Table,
    annotators: pa.Table | None = None,
    extra_files: dict[str, bytes] | None = None,
    instances_in: int,
    review_only: int = 0,
) -> ReleasePlan:
    return package_release(
        config=config, dataset=dataset, delivered=delivered, findings=findings, quarantine=quarantine,
        image_quarantined=image_quarantined, ingest_rejected=ingest_rejected, assignments=assignments,
        annotators=annotators, extra_files=extra_files, instances_in=instances_in, review_only=review_only,
    )
