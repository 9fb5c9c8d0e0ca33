"""Twin deliveries: runs of identical inputs started together publish exactly one release, and
every run names it, on the local store and on S3 (moto_server). Each run stages its own files
(the report differs between runs, as real runs' do), then publishes through the claim protocol;
the Prefect flow itself is raced in tests/release/test_publication.py."""

from __future__ import annotations

import tempfile
import threading

import orjson
import pytest

from kpdeliver.release.catalog import rebuild_catalog
from kpdeliver.release.layout import SIGNOFF, read_manifest, release_prefix
from kpdeliver.release.package import ReleasePlan, finish_plan
from kpdeliver.release.publish import (
    clean_staging,
    find_duplicate,
    fingerprint_claim,
    publish,
    published_versions,
    staging_prefix,
)
from kpdeliver.release.stage import stage_plan
from kpdeliver.release.verify import verify_release
from kpdeliver.storage import LocalStore, open_store
from tests.release_helpers import tiny_release_plan

REPEATS = 10


def plan(inputs: str, run: int) -> ReleasePlan:
    """The tiny release (images not copied), with what differs between inputs and between twin runs."""
    with tempfile.TemporaryDirectory() as source:
        made = tiny_release_plan(LocalStore(source))
    made.copies.clear()
    made.files["qa/inputs.txt"] = inputs.encode() * 50
    del made.files[SIGNOFF]
    finish_plan(made, f"<html>run {run}</html>")  # what differs between twin runs
    return made


def run_twins(store, dataset: str, fingerprint: str, n: int, *, inputs: str = "same") -> list:
    """`n` runs of the same inputs, each staging then publishing, released together at a barrier."""
    barrier = threading.Barrier(n, timeout=60)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            staged = staging_prefix("acme", dataset, fingerprint)
            barrier.wait()
            stage_plan(plan(inputs, i), release=store, source=store, prefix=staged)
            results[i] = publish(
                store=store,
                client="acme",
                dataset=dataset,
                fingerprint=fingerprint,
                staged_prefix=staged,
                manifest_fields={"source": {"run": "twin"}},
            )
            clean_staging(store, "acme", dataset, fingerprint)
        except Exception as e:  # reported by the assertion below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    return results


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "releases")
    return open_store(f"s3://{request.getfixturevalue('s3_bucket')}/releases")


def test_twin_and_triple_runs_started_together_publish_one_release_each_time(store):
    for rep in range(REPEATS):
        dataset, fp, n = f"pose{rep}", f"{rep:02d}" * 32, 2 + rep % 2  # twins, then triplets, alternately
        results = run_twins(store, dataset, fp, n)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert published_versions(store, "acme", dataset) == [1], rep
        assert {(r.version, r.location) for r in results} == {(1, store.location(f"acme/{dataset}/v0001"))}
        assert all(r.manifest == results[0].manifest for r in results)  # every run names the same release
        assert verify_release(store, f"acme/{dataset}/v0001") == []
        assert list(store.list(".staging/")) == []
    assert rebuild_catalog(store, "acme").num_rows == REPEATS


def test_twins_racing_other_inputs_still_give_one_release_per_input(store):
    results = []
    barrier = threading.Barrier(4, timeout=60)

    def run(fp: str, i: int) -> None:
        staged = staging_prefix("acme", "pose", fp)
        barrier.wait()
        stage_plan(plan(fp, i), release=store, source=store, prefix=staged)
        results.append(
            (
                fp,
                publish(
                    store=store,
                    client="acme",
                    dataset="pose",
                    fingerprint=fp,
                    staged_prefix=staged,
                    manifest_fields={},
                ).version,
            )
        )

    threads = [
        threading.Thread(target=run, args=(fp, i))
        for i, fp in enumerate(["a" * 64, "a" * 64, "b" * 64, "b" * 64])
    ]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    assert len(results) == 4 and published_versions(store, "acme", "pose") == [1, 2]
    by_fp = {fp: {v for f, v in results if f == fp} for fp in ("a" * 64, "b" * 64)}
    assert sorted(len(v) for v in by_fp.values()) == [1, 1] and by_fp["a" * 64] != by_fp["b" * 64]
    for v in (1, 2):
        assert verify_release(store, f"acme/pose/v{v:04d}") == []


def test_a_twin_arriving_after_the_release_and_its_cleanup_reports_it(tmp_path):
    store = LocalStore(tmp_path)
    fp = "cd" * 32
    first = run_twins(store, "pose", fp, 1)[0]
    # the twin staged before the first run published, and publishes after it cleaned up
    late = run_twins(store, "pose", fp, 1)[0]
    assert (first.version, late.version) == (1, 1) and late.manifest == first.manifest
    assert published_versions(store, "acme", "pose") == [1] and find_duplicate(store, "acme", "pose", fp) == 1


@pytest.mark.parametrize("recorded_version", [True, False])
def test_a_crashed_winner_does_not_block_the_next_run_which_completes_its_version(tmp_path, recorded_version):
    store = LocalStore(tmp_path)
    fp = "ef" * 32
    dead = staging_prefix("acme", "pose", fp)
    stage_plan(plan("same", 0), release=store, source=store, prefix=dead)
    # the dead run claimed the inputs (and maybe v0001), copied one file, and was killed
    claim = {"staging": dead, "fields": {}, "key_id": None}
    if recorded_version:
        store.put_if_absent("acme/pose/.claims/v0001", fp.encode())
        claim["version"] = 1
        store.put("acme/pose/v0001/coco/train.json", b"partial")
    store.put_if_absent(fingerprint_claim("acme", "pose", fp), orjson.dumps(claim))
    assert published_versions(store, "acme", "pose") == []

    mine = staging_prefix("acme", "pose", fp)
    stage_plan(plan("same", 1), release=store, source=store, prefix=mine)
    done = publish(
        store=store, client="acme", dataset="pose", fingerprint=fp, staged_prefix=mine, manifest_fields={}
    )
    assert done.version == 1 and done.resumed
    assert verify_release(store, "acme/pose/v0001") == []
    # completed from the dead run's staging: the claim decides which bytes are published
    assert store.get("acme/pose/v0001/qa/report.html") == b"<html>run 0</html>"
    assert orjson.loads(store.get(fingerprint_claim("acme", "pose", fp)))["version"] == 1
    assert read_manifest(store, release_prefix("acme", "pose", 1))["fingerprint"] == fp
