"""A small demo release built through the delivery's own tasks (`task.fn()`, local folders): its
report is what the tests in this folder read, render and look at."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.config import ClientConfig, load_config
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.release.package import ReleasePlan
from kpdeliver.storage import LocalStore
from kpdeliver.synth import make_demo_batch


@dataclass
class DemoRelease:
    root: Path
    config: ClientConfig
    plan: ReleasePlan
    findings: object  # pa.Table
    html: str


def package_demo(config: ClientConfig) -> tuple[ReleasePlan, object]:
    from tasks import compute, store

    source = LocalStore(config.source)
    ingested = ingest_images(source)
    assignments = compute.assign_work.fn(ingested.images, config.annotators, config.assignment)
    collected = store.collect_exports.fn(source, ingested.images, resolve_schema(config.schema_name), config.annotators)
    validated = compute.validate.fn(collected, ingested.findings, assignments, config.validation, config.deep_qa)
    held = compute.quarantine.fn(collected, assignments, validated.validation.findings, config.validation.quarantine)
    previous = store.previous_release.fn(LocalStore(config.releases), config.client, config.dataset)
    plan = compute.package.fn(config, held, validated, ingested.refused, assignments, source, previous)
    return plan, validated.validation.findings


@pytest.fixture(scope="session")
def demo_release(tmp_path_factory) -> DemoRelease:
    root = tmp_path_factory.mktemp("report-demo")
    config = load_config(make_demo_batch(root, seed=3, n_images=14))
    plan, findings = package_demo(config)
    return DemoRelease(root, config, plan, findings, plan.files["qa/report.html"].decode())
