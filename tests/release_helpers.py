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
from kpdeliver.release.publish import Published, clean_staging, publish, staging_prefix
from kpdeliver.release.stage import stage_plan
from kpdeliver.storage import LocalStore, ObjectStore


def tiny_release_plan(source: ObjectStore) -> ReleasePlan:
    """A real package of a two-image batch: `a.jpg` delivered with two people, `b.jpg` held back whole
    with its one person (an error finding); images listed 2, instances in 3, one finding."""
    import numpy as np
    import pyarrow as pa

    from kpdeliver.codecs import REJECTED_SCHEMA
    from kpdeliver.config import QuarantineScope
    from kpdeliver.findings import findings_for
    from kpdeliver.model import Dataset, Images, Instances
    from kpdeliver.release.package import finish_plan, package_release
    from kpdeliver.release.quarantine import hold_back
    from kpdeliver.schema import COCO17

    shas = []
    for name in ("a.jpg", "b.jpg"):
        image = b"\xff\xd8" + os.urandom(3000)
        source.put(f"images/{name}", image)
        shas.append(hashlib.sha256(image).hexdigest())
    kps = np.tile(np.array([30.0, 20.0, 2.0]), (3, 17, 1)) + np.arange(3)[:, None, None] * [5, 3, 0]
    ds = Dataset(
        COCO17,
        Images.build(
            id=[1, 2],
            file_name=["a.jpg", "b.jpg"],
            width=[100, 100],
            height=[80, 80],
            sha256=shas,
            source=["images/a.jpg", "images/b.jpg"],
        ),
        Instances.build(id=[11, 12, 13], image_id=[1, 1, 2], keypoints=kps, annotator=["x"] * 3),
    )
    findings = findings_for("visibility.invalid_flag", message="bad flag", annotation_id=13, image_id=2, n=1)
    delivered, quarantine, held = hold_back(
        ds, findings, REJECTED_SCHEMA.empty_table(), QuarantineScope.instance
    )
    plan = package_release(
        config=ClientConfig(
            client="acme",
            dataset="pose",
            source="s",
            releases="r",
            annotators=["x"],
            splits={"train": 1.0, "val": 0.0},
        ),
        dataset=ds,
        delivered=delivered,
        findings=findings,
        quarantine=quarantine,
        image_quarantined=held,
        ingest_rejected=pa.table(
            {"file_name": pa.array([], pa.string()), "status": pa.array([], pa.string())}
        ),
        assignments=pa.table({"image_id": [1, 2]}),
        instances_in=3,
    )
    finish_plan(plan, "<html>report</html>")
    return plan


def publish_small_release(store: ObjectStore, source: ObjectStore) -> Published:
    """The tiny release (tiny_release_plan), published unsigned as acme/pose."""
    plan = tiny_release_plan(source)
    fp = "f0" * 32
    staged = staging_prefix("acme", "pose", fp)
    stage_plan(plan, release=store, source=source, prefix=staged)
    published = publish(
        store=store, client="acme", dataset="pose", fingerprint=fp, staged_prefix=staged, manifest_fields={}
    )
    clean_staging(store, "acme", "pose", fp)
    return published


def package_demo(config: ClientConfig) -> tuple[ReleasePlan, object]:
    """The demo batch of `config` through the flow's tasks up to its release plan (`task.fn()`):
    (plan, findings)."""
    from tasks import compute, store

    source = LocalStore(config.source)
    ingested = ingest_images(source)
    assignments = compute.assign_work.fn(ingested.images, config.annotators, config.assignment)
    collected = store.collect_exports.fn(
        source, ingested.images, resolve_schema(config.schema_name), config.annotators
    )
    validated = compute.validate.fn(
        collected, ingested.findings, assignments, config.validation, config.deep_qa
    )
    held = compute.quarantine.fn(collected, assignments, validated.findings, config.validation.quarantine)
    previous = store.previous_release.fn(LocalStore(config.releases), config.client, config.dataset)
    plan = compute.package.fn(config, held, validated, ingested.refused, assignments, source, previous)
    return plan, validated.findings
