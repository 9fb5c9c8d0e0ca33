"""Tasks that compute: split, validate, deep QA, package. No retries (deterministic)."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from kpdeliver.assign import assignments as assign
from kpdeliver.release import package as release
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
def package(**kwargs) -> release.ReleasePlan:
    return release.package_release(**kwargs)
