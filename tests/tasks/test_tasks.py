"""The delivery's tasks, called through `task.fn()` in the flow's order, against real stores: a
local folder and S3 (the moto server on loopback). No Prefect server is needed for `.fn()`."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from PIL import Image
from prefect import Task

from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.config import Assignment, QuarantineScope, load_config
from kpdeliver.findings import findings_for
from kpdeliver.ingest.batch import ingest_images, list_image_keys, shard_keys
from kpdeliver.release.layout import SIGNOFF
from kpdeliver.release.publish import ReleaseKey, input_fingerprint, published_versions
from kpdeliver.release.stage import SourceChanged, split_plan
from kpdeliver.storage import LocalStore, open_store
from kpdeliver.synth import make_demo_batch
from tasks import compute, store
from tasks.bulk import Bulk

pytestmark = pytest.mark.slow


def _tasks(module) -> list[Task]:
    return [v for v in vars(module).values() if isinstance(v, Task)]


def test_every_task_that_reads_or_writes_a_store_is_retried_and_no_pure_compute_task_is():
    assert {t.name for t in _tasks(store)} == {
        "list-batch",
        "probe-images",
        "collect",
        "find-published",
        "is-staged",
        "stage-files",
        "stage-shard",
        "mark-staged",
        "publish",
        "previous-release",
        "catalog",
        "clean-staging",
    }
    # packaging reads the images its report draws from the source store
    for t in [*_tasks(store), compute.package]:
        assert t.retries >= 2, t.name
        assert 0 < max(t.retry_delay_seconds) <= 10, t.name
    assert {t.name for t in _tasks(compute)} == {
        "assemble-ingest",
        "assign-work",
        "validate",
        "quarantine",
        "package",
    }
    assert all(not t.retries for t in _tasks(compute) if t is not compute.package)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    config = load_config(make_demo_batch(root, seed=5, n_images=16))
    return root, config


def _upload(folder, bucket: str) -> str:
    url = f"s3://{bucket}/batch"
    s3 = open_store(url)
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            s3.put(p.relative_to(folder).as_posix(), p.read_bytes())
    return url


@pytest.fixture(params=["local", "s3"])
def stores(request, demo, tmp_path):
    """(source store, releases store) of the demo batch, on a local folder or on S3."""
    root, config = demo
    if request.param == "local":
        return LocalStore(config.source), LocalStore(tmp_path / "releases")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(_upload(root / "batch", bucket)), open_store(f"s3://{bucket}/releases")


def _ingest(source, shard_size: int = 5):
    """Ingest as the flow maps it: list, probe each shard, assemble."""
    listing = store.list_batch.fn(source)
    probed = [
        store.probe_images.fn(source, Bulk(keys), Bulk(listing.checksums))
        for keys in shard_keys(listing.keys, shard_size)
    ]
    return compute.assemble_ingest.fn(probed, listing.skipped, source)


@dataclass(frozen=True)
class Packaged:
    """The flow's steps from ingest to package on one batch, each task's result."""

    ingested: object
    collected: object
    assignments: object
    validated: object
    held: object
    plan: object


@pytest.fixture
def to_package():
    """run(config, source, earlier=None, scope=None): the flow's chain from ingest to package, as
    the flow calls it (`earlier`: the findings before validation, default ingest's)."""

    def run(config, source, *, earlier=None, scope=None) -> Packaged:
        ingested = _ingest(source)
        assignments = compute.assign_work.fn(ingested.images, config.annotators, config.assignment)
        collected = store.collect_exports.fn(
            source, ingested.images, resolve_schema(config.schema_name), config.annotators
        )
        validated = compute.validate.fn(
            collected,
            ingested.findings if earlier is None else earlier,
            assignments,
            config.validation,
            config.deep_qa,
        )
        held = compute.quarantine.fn(
            collected, assignments, validated.findings, scope or config.validation.quarantine
        )
        plan = compute.package.fn(config, held, validated, ingested.refused, assignments, source, None)
        return Packaged(ingested, collected, assignments, validated, held, plan)

    return run


def _stage(plan, releases, source, key, shard_size: int = 5) -> None:
    files, shards = split_plan(plan, shard_size)
    listed = store.stage_files.fn(releases, key, files)
    for shard in shards:
        listed |= store.stage_shard.fn(releases, source, key, Bulk(shard))
    store.mark_staged.fn(releases, key, plan.counts, plan.verdict, Bulk(listed), plan.files.get(SIGNOFF))


def test_the_tasks_in_the_flows_order_publish_one_release(demo, stores, to_package):
    _, config = demo
    source, releases = stores
    schema = resolve_schema(config.schema_name)

    run = to_package(config, source)
    ingested, collected, plan = run.ingested, run.collected, run.plan
    key = ReleaseKey(
        config.client,
        config.dataset,
        input_fingerprint(config, ingested.images.sha256.tolist(), collected.files),
    )
    assert store.find_published.fn(releases, key) is None
    assert not store.is_staged.fn(releases, key)
    _stage(plan, releases, source, key)
    _stage(plan, releases, source, key, shard_size=3)  # a retried stage writes the same bytes again
    assert store.is_staged.fn(releases, key)
    staged = list(releases.list(".staging/"))
    assert staged and all(k.startswith(key.staging + "/") for k in staged)  # only this run's own folder

    published = store.publish_release.fn(releases, key, {"schema": schema.to_dict()})
    assert store.catalog_release.fn(releases, key, published.version) == 1
    store.clean_staging.fn(releases, key)

    assert published.version == 1 and published_versions(releases, config.client, config.dataset) == [1]
    assert not store.is_staged.fn(releases, key)
    assert not list(releases.list(".staging/"))
    again = store.find_published.fn(releases, key)  # the next run with these inputs finds it
    assert (again.version, again.location, again.manifest) == (1, published.location, published.manifest)
    manifest = published.manifest
    for path, meta in manifest["files"].items():
        data = releases.get(f"{published.prefix}/{path}")
        assert meta["sha256"] == hashlib.sha256(data).hexdigest(), path
    assert {"qa/validation_results.json", "qa/keypoints.parquet", "qa/changes.parquet"} <= set(
        manifest["files"]
    )
    assert not any(
        p.startswith("qa/data_docs/") for p in manifest["files"]
    )  # GX's CDN-bound pages are not shipped
    signoff = orjson.loads(releases.get(f"{published.prefix}/{SIGNOFF}"))
    assert manifest["qa"]["signoff_content_sha256"] == signoff["content_sha256"]
    c = manifest["counts"]
    assert (
        c["instances_delivered"] + c["instances_quarantined"] + c["instances_review_only"]
        == c["instances_in"]
    )


def _jpeg(w: int, h: int, colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, "JPEG")
    return buf.getvalue()


def test_ingest_returns_each_refused_images_status(tmp_path):
    source = LocalStore(tmp_path)
    a = _jpeg(40, 30, (10, 20, 30))
    source.put("images/a.jpg", a)
    source.put("images/sub/copy.jpg", a)
    source.put("images/broken.png", b"not a png")
    ingested = _ingest(source)
    assert ingested.images.file_name.tolist() == ["a.jpg"]
    assert sorted(
        ingested.refused.select(["file_name", "status"]).to_pylist(), key=lambda r: r["file_name"]
    ) == [
        {"file_name": "broken.png", "status": "unreadable_image"},
        {"file_name": "sub/copy.jpg", "status": "duplicate_image"},
    ]


def test_assign_work_uses_only_the_assignment_section(demo):
    _, config = demo
    images = _ingest(LocalStore(config.source)).images
    table = compute.assign_work.fn(images, ["x", "y"], Assignment(seed=1, overlap=0.5))
    assert table == compute.assign_work.fn(images, ["x", "y"], Assignment(seed=1, overlap=0.5))
    primary = table.filter(np.asarray(table["role"].to_pylist()) == "primary")
    assert sorted(primary["image_id"].to_pylist()) == sorted(images.id.tolist())
    assert set(table["annotator"].to_pylist()) == {"x", "y"}
    assert "overlap" in table["role"].to_pylist()


def test_validate_keeps_earlier_findings_first_and_returns_docs_and_scorecards(demo, to_package):
    _, config = demo
    earlier = findings_for("ingest.duplicate_image", message="an earlier finding", source="images/x.jpg", n=1)
    run = to_package(config, LocalStore(config.source), earlier=earlier, scope=QuarantineScope.image)
    validated, held = run.validated, run.held
    findings = validated.findings
    assert findings.slice(0, 1).to_pylist() == earlier.to_pylist()
    checks = findings["check"].to_pylist()
    assert any(c.startswith("qa.") for c in checks) and any(
        c.startswith(("visibility.", "bounds.")) for c in checks
    )
    first_qa = next(i for i, c in enumerate(checks) if c.startswith("qa."))
    assert all(c.startswith("qa.") for c in checks[first_qa:])  # deep QA's findings come last
    assert set(validated.annotators["annotator"].to_pylist()) >= set(config.annotators)
    assert orjson.loads(validated.results_json)[0]["expectations"]  # the row rules' results travel as JSON

    assert held.images.any()  # image scope: an error holds its whole image back
    kept = set(held.delivered.images.id.tolist())
    assert kept.isdisjoint(held.candidates.images.id[held.images].tolist())
    assert len(held.delivered.instances) + held.table.num_rows + held.review_only == held.instances_in


def test_package_writes_the_refused_images_into_the_index(demo, tmp_path, to_package):
    _, config = demo
    source = LocalStore(tmp_path / "batch")
    for key in LocalStore(config.source).list(""):
        source.put(key, LocalStore(config.source).get(key))
    first = sorted(k for k in source.list("images/"))[0]
    source.put("images/zz_copy.jpg", source.get(first))
    plan = to_package(config, source).plan
    index = pq.read_table(io.BytesIO(plan.files["index/images.parquet"])).to_pylist()
    assert {"file_name": "zz_copy.jpg", "status": "duplicate_image"} in [
        {k: r[k] for k in ("file_name", "status")} for r in index
    ]
    assert plan.counts.images_rejected_at_ingest == 1
    assert orjson.loads(plan.files["qa/signoff.json"])["verdict"] == plan.verdict.verdict


def test_sharded_ingest_equals_the_whole_batchs_and_shards_keep_folders_whole(demo, tmp_path):
    _, config = demo
    source = LocalStore(tmp_path / "batch")
    for k in LocalStore(config.source).list(""):
        source.put(k, LocalStore(config.source).get(k))
    first = sorted(source.list("images/"))[0]
    source.put("images/video/f1.jpg", source.get(first))  # a duplicate in a later shard
    source.put("images/video/f2.jpg", _jpeg(8, 6, (1, 2, 3)))
    source.put("images/broken.png", b"not a png")
    source.put("images/notes.txt", b"not an image format")
    whole = ingest_images(source)
    assert "ingest.unsupported_format" in whole.findings["check"].to_pylist()
    for size in (1, 2, 1000):
        sharded = _ingest(source, size)
        assert sharded.images.to_arrow() == whole.images.to_arrow(), size
        assert sharded.findings == whole.findings and sharded.refused == whole.refused, size
    shards = shard_keys(list_image_keys(source), 2)  # what the flow shards: the images in a delivered format
    assert sorted(k for s in shards for k in s) == sorted(set(source.list("images/")) - {"images/notes.txt"})
    assert any(
        s[:2] == ["images/video/f1.jpg", "images/video/f2.jpg"]
        or {"images/video/f1.jpg", "images/video/f2.jpg"} <= set(s)
        for s in shards
    )
    assert all(len(s) <= 2 for s in shards)


def test_a_shard_refuses_an_image_changed_after_ingest(demo, tmp_path, to_package):
    _, config = demo
    source = LocalStore(tmp_path / "batch")
    for k in LocalStore(config.source).list(""):
        source.put(k, LocalStore(config.source).get(k))
    plan = to_package(config, source).plan
    src, _, _ = plan.copies[0]
    source.put(src, _jpeg(9, 9, (9, 9, 9)))
    shard = next(s for s in split_plan(plan, 4)[1] if any(c[0] == src for c in s.copies))
    key = ReleaseKey(config.client, config.dataset, "f" * 64)
    releases = LocalStore(tmp_path / "releases")
    with pytest.raises(SourceChanged, match="changed after ingest"):
        store.stage_shard.fn(releases, source, key, Bulk(shard))
    assert not [k for k in releases.list("") if k.endswith(src.rsplit("/", 1)[-1])]
