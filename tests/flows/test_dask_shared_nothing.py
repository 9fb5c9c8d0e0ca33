"""The delivery flow on an external Dask cluster whose 2 workers share nothing with the flow's host:
each worker has its own folder, HOME, TMPDIR and Prefect home, and (where unprivileged user
namespaces are allowed, as here) its own mount namespace in which the host's temporary folders,
the batch and the config among them, do not exist. The source and the releases are on the S3 API
server on loopback; the release equals the thread runner's, file for file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import yaml

from kpdeliver.config import load_config
from kpdeliver.release.layout import read_manifest, release_prefix
from kpdeliver.runner_settings import RunnerSettings
from kpdeliver.storage import LocalStore, open_store
from tests.dask_cluster import shared_nothing_cluster
from tests.s3_server import DUMMY_AWS_ENV, make_bucket

pytestmark = pytest.mark.slow

N_IMAGES = 12


def _s3_config(tmp_path: Path, endpoint: str) -> Path:
    """The demo batch on a fresh bucket; the config names only S3 locations."""
    from kpdeliver.synth import make_demo_batch

    make_demo_batch(tmp_path / "demo", seed=5, n_images=N_IMAGES)
    bucket = make_bucket(endpoint)
    src, dst = (
        LocalStore(tmp_path / "demo" / "batch"),
        open_store(f"s3://{bucket}/batch", {"endpoint_url": endpoint}),
    )
    for key in src.list():
        dst.put(key, src.get(key))
    doc = yaml.safe_load((tmp_path / "demo" / "client.yaml").read_text())
    doc.update(
        source=f"s3://{bucket}/batch",
        releases=f"s3://{bucket}/releases-threads",
        storage={"endpoint_url": endpoint},
    )
    (tmp_path / "client.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp_path / "client.yaml"


def _digests(config, releases: str) -> tuple[dict, str]:
    store = open_store(releases, config.storage.model_dump(exclude_none=True))
    manifest = read_manifest(store, release_prefix(config.client, config.dataset, 1))
    return {p: m["sha256"] for p, m in manifest["files"].items()}, manifest["fingerprint"]


def test_workers_that_share_nothing_publish_the_thread_runners_release(
    tmp_path, tmp_path_factory, s3_endpoint, prefect_harness
):
    from prefect.settings import PREFECT_API_URL

    from flows.delivery import delivery_run

    config = load_config(_s3_config(tmp_path, s3_endpoint))
    delivery_run(config)  # the reference: the thread runner
    hide = [tmp_path_factory.getbasetemp(), Path(tempfile.gettempdir()), Path(os.environ["PREFECT_HOME"])]
    env = {**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL": s3_endpoint, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    with shared_nothing_cluster(tmp_path / "cluster", 2, hide=hide, env=env) as cluster:
        seen = cluster.run(
            lambda *paths: [os.path.exists(p) for p in paths] + [os.getcwd(), os.environ["HOME"]],
            str(tmp_path / "client.yaml"),
            str(tmp_path / "demo" / "batch"),
            os.environ["PREFECT_HOME"],
        )
        dask_releases = config.releases.replace("releases-threads", "releases-dask")
        delivery_run(
            config.model_copy(
                update={
                    "releases": dask_releases,
                    "runner": RunnerSettings(kind="dask", address=cluster.address, shard_size=4),
                }
            )
        )
        # the mapped tasks ran in those 2 workers (the threads run ran every task in this process)
        ran = cluster.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(ran) == 2 and all(n > 0 for n in ran.values()), ran

    homes = set()
    for exists_config, exists_batch, exists_prefect_home, cwd, home in seen.values():
        if (
            cluster.namespaced
        ):  # where unprivileged user namespaces are allowed (here): the host's files are not there
            assert (exists_config, exists_batch, exists_prefect_home) == (False, False, False)
        assert Path(cwd).name.startswith("worker-") and Path(home).parent == Path(cwd)
        homes.add(home)
    assert len(homes) == 2 and str(Path.home()) not in homes

    expected, fingerprint = _digests(config, config.releases)
    got, dask_fingerprint = _digests(config, dask_releases)
    assert any(p.startswith("yolo/images/") for p in expected) and "qa/findings.parquet" in expected
    same = {p for p in expected if got.get(p) == expected[p]}
    # the report, the Data Docs and the sign-off carry the run's time; every data file is the same
    assert sorted(set(expected) - same) == sorted(set(got) - same) and all(
        p.startswith(("qa/report", "qa/signoff", "qa/data_docs", "qa/validation"))
        for p in set(expected) - same
    ), sorted(set(expected) - same)
    assert dask_fingerprint == fingerprint
