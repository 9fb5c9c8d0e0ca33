"""The delivery flow on a Dask LocalCluster of 2 worker processes (against the session's Prefect
test harness): the same release data as the default thread runner, made in the workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpdeliver.config import ConfigError, config_from_dict, load_config
from kpdeliver.release.publish import input_fingerprint
from kpdeliver.runner_settings import RunnerSettings

DATA = ("coco", "yolo", "index", "qa")


def _data_files(release: Path) -> dict[str, bytes]:
    """coco/, yolo/ (labels, images, data.yaml), index/*.parquet, qa/*.parquet: not the report,
    the Data Docs or the sign-off (timestamps)."""
    out = {}
    for p in sorted(release.rglob("*")):
        rel = p.relative_to(release).as_posix()
        top = rel.split("/", 1)[0]
        if p.is_file() and top in DATA and (top in ("coco", "yolo") or p.suffix == ".parquet"):
            out[rel] = p.read_bytes()
    return out


BASE = {"client": "acme", "dataset": "pose", "source": "/b", "releases": "/r", "annotators": ["a"]}


def test_the_runner_section_is_typed_and_leaves_the_fingerprint_alone():
    default = config_from_dict(BASE)
    assert default.runner == RunnerSettings() and default.runner.kind.value == "threads"
    remote = config_from_dict(
        {**BASE, "runner": {"kind": "dask", "address": "tcp://sched:8786", "shard_size": 50}}
    )
    local = config_from_dict({**BASE, "runner": {"kind": "dask", "workers": 3}})
    assert (remote.runner.address, remote.runner.shard_size, local.runner.workers) == (
        "tcp://sched:8786",
        50,
        3,
    )
    assert len({input_fingerprint(c, ["ab"], {"x": "cd"}) for c in (default, remote, local)}) == 1
    for bad, says in (
        ({"kind": "dask", "address": "tcp://s:1", "workers": 2}, "not both"),
        ({"kind": "threads", "workers": 2}, "for kind: dask"),
        ({"kind": "ray"}, "runner.kind"),
        ({"shard_size": 0}, "runner.shard_size"),
        ({"kind": "dask", "address": "http://s"}, "runner.address"),
    ):
        with pytest.raises(ConfigError, match=says):
            config_from_dict({**BASE, "runner": bad}, origin="client.yaml")


@pytest.mark.slow
def test_dask_workers_build_the_release_the_thread_runner_builds(tmp_path, prefect_harness):
    from distributed import Client, LocalCluster

    from flows.delivery import delivery_run
    from kpdeliver.synth import make_demo_batch

    make_demo_batch(tmp_path, seed=11, n_images=24)
    config = load_config(tmp_path / "client.yaml")
    threads = delivery_run(config.model_copy(update={"releases": str(tmp_path / "rel-threads")}))
    with (
        LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        dask = delivery_run(
            config.model_copy(
                update={
                    "releases": str(tmp_path / "rel-dask"),
                    "runner": RunnerSettings(kind="dask", address=cluster.scheduler_address, shard_size=4),
                }
            )
        )
        ran = client.run(lambda dask_worker: dask_worker.state.executed_count)

    expected, got = _data_files(Path(threads.release)), _data_files(Path(dask.release))
    assert any(k.startswith("yolo/images/") for k in expected) and "qa/findings.parquet" in expected
    assert sorted(got) == sorted(expected)
    assert [k for k in expected if got[k] != expected[k]] == []
    assert dask.fingerprint == threads.fingerprint  # the runner is not an input

    # the tasks ran in both worker processes (24 images in shards of 4), not in the flow's
    assert len(ran) == 2 and all(n > 0 for n in ran.values()), ran
