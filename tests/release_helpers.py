"""A small release published by the release stage itself (layout, manifest and sign-off as verify
checks them), shared by the tests of verify, share and the CLI's imports; and a demo batch packaged
through the delivery's own tasks, shared by the report and sign-off tests."""
from __future__ import annotations

import hashlib
import os

from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.config import ClientConfig
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.release.package import ReleasePlan
from kpdeliver.release.publish import Published, clean_staging, publish, stage, staging_prefix
from kpdeliver.release.signoff import Counts, Verdict
from kpdeliver.storage import LocalStore, ObjectStore


def publish_small_release(store: ObjectStore, source: ObjectStore) -> Published:
    """One image, one COCO file and a report, published unsigned as acme/pose."""
    image = b"\xff\xd8" + os.urandom(5000)
    source.put("images/a.jpg", image)
    plan = ReleasePlan(
        files={"coco/train.json": b'{"images": []}', "qa/report.html": b"<html>ok</html>"},
        copies=[("images/a.jpg", "yolo/images/train/a.jpg", hashlib.sha256(image).hexdigest())],
        counts=Counts(images_listed=1, images_delivered=1, images_quarantined=0, images_rejected_at_ingest=0,
                      instances_in=0, instances_delivered=0, instances_quarantined=0, instances_review_only=0,
                      splits={"train": 1}, delivered_error_findings=0, findings=0),
        verdict=Verdict("pass"))
    fp = "f0" * 32
    staged = staging_prefix("acme", "pose", fp)
    stage(plan, release_store=store, source_store=source, prefix=staged)
    published = publish(store=store, client="acme", dataset="pose", fingerprint=fp, staged_prefix=staged,
                        manifest_fields={})
    clean_staging(store, "acme", "pose", fp)
    return published


def package_demo(config: ClientConfig) -> tuple[ReleasePlan, object]:
    """The demo batch of `config` through the flow's tasks up to its release plan (`task.fn()`):
    (plan, findings)."""
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
