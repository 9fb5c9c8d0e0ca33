"""The catalogue and the index are tables people query: typed columns read back in DuckDB, a join
of annotations to images by split without the manifest, and catalogue appends that survive twins."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.config import load_config
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.release import catalog
from kpdeliver.release.publish import ReleaseKey, input_fingerprint, publish, staging_prefix
from kpdeliver.release.stage import stage_plan
from kpdeliver.storage import LocalStore
from kpdeliver.synth import make_demo_batch
from tasks import compute, store

pytestmark = pytest.mark.slow  # Great Expectations validates the demo batch


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, object]:
    """One demo release published by the delivery's tasks (through `.fn()`, no Prefect server)."""
    root = tmp_path_factory.mktemp("demo")
    config = load_config(make_demo_batch(root, seed=3, n_images=16))
    source, releases = LocalStore(config.source), LocalStore(config.releases)
    schema = resolve_schema(config.schema_name)
    ingested = ingest_images(source)
    assignments = compute.assign_work.fn(ingested.images, config.annotators, config.assignment)
    collected = store.collect_exports.fn(source, ingested.images, schema, config.annotators)
    key = ReleaseKey(
        config.client,
        config.dataset,
        input_fingerprint(config, ingested.images.sha256.tolist(), collected.files),
    )
    validated = compute.validate.fn(
        collected, ingested.findings, assignments, config.validation, config.deep_qa
    )
    held = compute.quarantine.fn(collected, assignments, validated.findings, config.validation.quarantine)
    plan = compute.package.fn(config, held, validated, ingested.refused, assignments, source, None)
    stage_plan(plan, release=releases, source=source, prefix=key.staging)
    published = store.publish_release.fn(releases, key, {"schema": schema.to_dict()})
    assert store.catalog_release.fn(releases, key, published.version) == 1
    assert store.catalog_release.fn(releases, key, published.version) == 1  # a retried task adds no row
    return Path(config.releases), config


def test_catalogue_columns_are_typed_and_the_location_relative(release):
    root, config = release
    path = root / config.client / "catalog.parquet"
    con = duckdb.connect()
    types = dict(
        con.execute(f"select column_name, column_type from (describe select * from '{path}')").fetchall()
    )
    assert types["created_at"].startswith("TIMESTAMP") and types["reasons"] == "VARCHAR[]"
    assert types["mean_oks"] == "DOUBLE" and types["version"] == "INTEGER"
    row = con.execute(
        f"select version, verdict, schema, location, manifest_sha256, mean_oks, images, "
        f"year(created_at) from '{path}'"
    ).fetchone()
    version, verdict, schema, location, sha, mean_oks, images, year = row
    assert (version, schema, location) == (1, "coco17", f"{config.client}/{config.dataset}/v0001")
    assert verdict in ("pass", "conditional", "fail") and 0 < mean_oks <= 1 and images > 0 and year >= 2026
    manifest = (root / location / "manifest.json").read_bytes()
    import hashlib

    assert sha == hashlib.sha256(manifest).hexdigest()
    # what verify cross-checks, read from the client folder it opens
    recorded = catalog.catalogued_row(LocalStore(root / config.client), "", config.dataset, 1)
    assert (recorded["manifest_sha256"], recorded["signing_key_id"]) == (sha, None)
    assert orjson.loads(manifest)["counts"]["images_delivered"] == images


def test_annotations_join_images_by_split_without_the_manifest(release):
    root, config = release
    index = root / config.client / config.dataset / "v0001" / "index"
    meta = pq.read_schema(index / "annotations.parquet").metadata
    names = orjson.loads(meta[b"kpdeliver.keypoint_names"])
    assert names[:3] == ["nose", "left_eye", "right_eye"] and len(names) == 17
    con = duckdb.connect()
    types = dict(
        con.execute(
            f"select column_name, column_type from (describe select * from '{index}/annotations.parquet')"
        ).fetchall()
    )
    assert (
        types["visibility"] == "TINYINT[]" and types["split"] == "VARCHAR" and types["file_name"] == "VARCHAR"
    )
    rows = con.execute(f"""
        select a.split, count(*) as instances, sum(len(list_filter(a.visibility, lambda v: v = 2)))
        from '{index}/annotations.parquet' a join '{index}/images.parquet' i
          on a.image_id = i.image_id and a.split = i.split and a.file_name = i.file_name
        group by a.split order by a.split""").fetchall()
    anns = pq.read_table(index / "annotations.parquet")
    assert sum(r[1] for r in rows) == anns.num_rows > 0
    assert {r[0] for r in rows} <= {"train", "val", "test"}
    kp = anns["keypoints"].to_pylist()
    assert [[int(t[2]) for t in inst] for inst in kp] == anns["visibility"].to_pylist()
    visible = sum(v == 2 for inst in anns["visibility"].to_pylist() for v in inst)
    assert sum(r[2] for r in rows) == visible


def _twin_publish(releases: LocalStore, fingerprint: str, dataset: str) -> int:
    from kpdeliver.release.package import ReleasePlan
    from kpdeliver.release.signoff import Counts, Verdict

    counts = Counts(
        images_listed=1,
        images_delivered=1,
        images_quarantined=0,
        images_rejected_at_ingest=0,
        instances_in=1,
        instances_delivered=1,
        instances_quarantined=0,
        instances_review_only=0,
        splits={"train": 1},
        delivered_error_findings=0,
        findings=0,
    )
    plan = ReleasePlan(
        files={"coco/train.json": fingerprint.encode()},
        copies=[],
        counts=counts,
        verdict=Verdict("fail", reasons=["mean agreement OKS 0.5 below 0.75"]),
    )
    prefix = staging_prefix("acme", dataset, fingerprint)
    stage_plan(plan, release=releases, source=releases, prefix=prefix)
    return publish(
        store=releases,
        client="acme",
        dataset=dataset,
        fingerprint=fingerprint,
        staged_prefix=prefix,
        manifest_fields={},
    ).version


class LosesTheFirstRace(LocalStore):
    """A store where a twin run writes the next catalogue generation just before this run does."""

    def __init__(self, root, twin: tuple[str, int]):
        super().__init__(root)
        self.twin = twin

    def put_if_absent(self, key: str, data: bytes) -> bool:
        if "/.catalog/" in key and self.twin:
            dataset, version = self.twin
            self.twin = None
            catalog.append_release(LocalStore(self.root), "acme", dataset, version)
        return super().put_if_absent(key, data)


def test_a_twin_appending_at_the_same_time_keeps_both_rows(tmp_path):
    plain = LocalStore(tmp_path)
    v_pose = _twin_publish(plain, "aa" * 16, "pose")
    v_hands = _twin_publish(plain, "bb" * 16, "hands")
    racing = LosesTheFirstRace(tmp_path, twin=("hands", v_hands))
    table = catalog.append_release(racing, "acme", "pose", v_pose)
    assert table.select(["dataset", "version"]).to_pylist() == [
        {"dataset": "hands", "version": 1},
        {"dataset": "pose", "version": 1},
    ]
    current, generation = catalog.read_catalog(plain, "acme")
    assert generation == 2 and current.equals(table)
    assert current["reasons"].to_pylist()[0] == ["mean agreement OKS 0.5 below 0.75"]
    assert current.schema.field("created_at").type == pa.timestamp("us", tz="UTC")


def test_a_late_copy_never_hides_a_newer_generation(tmp_path):
    plain = LocalStore(tmp_path)
    catalog.append_release(plain, "acme", "pose", _twin_publish(plain, "aa" * 16, "pose"))
    stale = plain.get("acme/catalog.parquet")
    catalog.append_release(plain, "acme", "hands", _twin_publish(plain, "bb" * 16, "hands"))
    plain.put("acme/catalog.parquet", stale)  # the slower twin's copy lands last
    table, generation = catalog.read_catalog(plain, "acme")
    assert generation == 2 and table.num_rows == 2


def test_a_catalogue_of_the_old_untyped_layout_is_rebuilt_once(tmp_path):
    plain = LocalStore(tmp_path)
    version = _twin_publish(plain, "aa" * 16, "pose")
    old = pa.table({"client": ["acme"], "version": [version], "created_at": ["2026-01-01T00:00:00+00:00"]})
    buf = io.BytesIO()
    pq.write_table(old, buf)
    plain.put("acme/catalog.parquet", buf.getvalue())
    table = catalog.append_release(plain, "acme", "pose", version)
    assert table.num_rows == 1 and table.schema == catalog.CATALOG_SCHEMA


def test_releases_command_lists_the_catalogue(release):
    import subprocess
    import sys

    root, config = release
    out = subprocess.run(
        [sys.executable, "-c", "from kpdeliver.cli import main; main()", "releases", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(Path(__file__).parents[2]), "COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    line = next(row for row in out.stdout.splitlines() if "v0001" in row)
    assert (
        config.client in line
        and config.dataset in line
        and any(v in line for v in ("pass", "fail", "conditional"))
    )
    none = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kpdeliver.cli import main; main()",
            "releases",
            str(root),
            "--client",
            "nobody",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(Path(__file__).parents[2]), "PATH": "/usr/bin:/bin"},
    )
    assert none.returncode == 1 and "no published release" in none.stderr and "Traceback" not in none.stderr


def test_a_run_killed_between_generation_and_copy_is_finished_by_the_next(tmp_path):
    plain = LocalStore(tmp_path)
    version = _twin_publish(plain, "aa" * 16, "pose")
    catalog.append_release(plain, "acme", "pose", version)
    plain.delete("acme/catalog.parquet")  # killed after the generation, before the copy
    catalog.append_release(plain, "acme", "pose", version)  # the re-run finds its release published
    table, _generation = catalog.read_catalog(plain, "acme")
    assert pq.read_table(io.BytesIO(plain.get("acme/catalog.parquet"))).num_rows == 1 == table.num_rows
