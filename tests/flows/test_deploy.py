"""`kpdeliver deploy` against a real `prefect server` on loopback, on PostgreSQL as in the production
stack (a throwaway cluster of Debian's postgresql, tests/postgres.py): two client configs give two
scheduled deployments; a process worker runs one of them to a published, catalogued release, and
Prefect's API tells what it published (state name and message, a markdown artifact, the last log
line); a run whose source went away fails with its one sentence. `deploy` skips, with the reason,
a config that fails `kpdeliver check` (an unknown schema, an unreachable source)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from kpdeliver.synth import make_demo_batch
from tests.postgres import cluster
from tests.s3_server import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("prefect server did not become healthy")


def _stop(proc: subprocess.Popen, signals: int = 1) -> None:
    """SIGTERM (a Prefect worker ignores the first one), then SIGKILL if it still runs."""
    for _ in range(signals):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                continue
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def database():
    with cluster() as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory, database):
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PYTHONPATH": str(ROOT),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    log = open(home / "server.log", "wb")  # noqa: SIM115 (the server writes it until it stops)
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "PREFECT_API_DATABASE_CONNECTION_URL": database},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(url, proc)
        yield {**env, "PREFECT_API_URL": url}
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def clients(tmp_path_factory) -> Path:
    """Three clients, each with its own demo batch, sharing one releases root; and the shipped
    clients/example.yaml, verbatim, beside the demo batch `make demo` writes (.work/demo)."""
    root = tmp_path_factory.mktemp("ops")
    (root / "clients").mkdir()
    for name, seed, schedule in (
        ("acme", 1, {"cron": "0 6 * * 1", "timezone": "UTC"}),
        ("globex", 2, {"cron": "30 5 * * *", "timezone": "Europe/Berlin"}),
        ("initech", 3, None),
    ):
        cfg = yaml.safe_load(make_demo_batch(root / name, seed=seed, n_images=12).read_text())
        cfg.update(
            client=name, source=str(root / name / "batch"), releases=str(root / "releases"), schedule=schedule
        )
        (root / "clients" / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    (root / "clients" / "notes.yaml").write_text("not: a client config\n")
    (root / "clients" / "example.yaml").write_text((ROOT / "clients" / "example.yaml").read_text())
    make_demo_batch(root / ".work" / "demo", seed=4, n_images=12)
    return root


def _kpdeliver(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from kpdeliver.cli import main; main()", *args],
        env=env,
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _api(env: dict, code: str, *args: str):
    """What `code` prints last (JSON), run against the server's API in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, check=False, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _deployments(env: dict) -> dict:
    return _api(
        env,
        """
import json
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as c:
    print(json.dumps({d.name: {"params": d.parameters, "pool": d.work_pool_name,
                               "crons": [(s.schedule.cron, s.schedule.timezone) for s in d.schedules]}
                      for d in c.read_deployments()}))
""",
    )


_RUN = """
import json, sys
from prefect.client.orchestration import get_client
from prefect.client.schemas import filters as f
from prefect.client.schemas.sorting import LogSort
with get_client(sync_client=True) as c:
    d = c.read_deployment_by_name(sys.argv[1])
    run, = [r for r in c.read_flow_runs(deployment_filter=f.DeploymentFilter(id=f.DeploymentFilterId(any_=[d.id])))
            if r.state.is_final()]  # the schedule's future runs aside
    subs = c.read_flow_runs(flow_run_filter=f.FlowRunFilter(
        parent_flow_run_id=f.FlowRunFilterParentFlowRunId(any_=[run.id])))
    logs = c.read_logs(log_filter=f.LogFilter(flow_run_id=f.LogFilterFlowRunId(any_=[run.id])),
                       sort=LogSort.TIMESTAMP_DESC, limit=1)
    arts = c.read_artifacts(artifact_filter=f.ArtifactFilter(flow_run_id=f.ArtifactFilterFlowRunId(any_=[run.id])))
    print(json.dumps({"name": run.name, "state": [run.state.type.value, run.state.name, run.state.message],
                      "subflows": {r.name: [r.state.name, r.state.message] for r in subs},
                      "last_log": logs[0].message if logs else None,
                      "artifacts": [[a.type, a.key, a.data] for a in arts]}))
"""


def _worker(env: dict, work: Path) -> subprocess.Popen:
    """A process worker on the pool, as the stack runs it (its flow runs log at Prefect's default INFO)."""
    work.mkdir(exist_ok=True)
    return subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "kpdeliver-process"],
        env={
            **env,
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        },
        cwd=work,
        stdout=open(work / "worker.log", "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _run_deployment(env: dict, name: str, work: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(BIN / "prefect"),
            "deployment",
            "run",
            f"deliver-client/{name}",
            "--watch",
            "--watch-timeout",
            "600",
        ],
        env=env,
        cwd=work,
        check=False,
        capture_output=True,
        text=True,
        timeout=660,
    )


def test_deploy_registers_one_scheduled_deployment_per_client_and_a_worker_runs_one(server, clients):
    first = _kpdeliver(server, "deploy", str(clients / "clients"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created work pool kpdeliver-process" in first.stdout
    again = _kpdeliver(server, "deploy", str(clients / "clients"))  # idempotent: updates, creates nothing
    assert again.returncode == 0 and "created work pool" not in again.stdout, again.stderr

    found = _deployments(server)
    assert set(found) == {
        "acme-people-demo",
        "globex-people-demo",
        "initech-people-demo",
        "example-warehouse-pose",
    }
    assert found["acme-people-demo"]["crons"] == [["0 6 * * 1", "UTC"]]
    assert found["globex-people-demo"]["crons"] == [["30 5 * * *", "Europe/Berlin"]]
    assert found["initech-people-demo"]["crons"] == []
    assert found["acme-people-demo"]["params"] == {"config_path": str(clients / "clients" / "acme.yaml")}
    assert {d["pool"] for d in found.values()} == {"kpdeliver-process"}

    work = clients / "worker"
    shutil.rmtree(clients / "initech" / "batch")  # gone after registration: its run must say so
    worker = _worker(server, work)
    try:
        run = _run_deployment(server, "example-warehouse-pose", work)  # as docs/operations.md runs it
        broken = _run_deployment(server, "initech-people-demo", work)
    finally:
        _stop(worker, signals=2)
    told = run.stdout + run.stderr + (work / "worker.log").read_text()[-3000:]
    assert run.returncode == 0, told
    assert "example-warehouse-pose-20" in run.stdout  # the run is named <client>-<dataset>-<date>
    releases = clients / ".work" / "demo" / "releases"
    release = releases / "example" / "warehouse-pose" / "v0001"
    assert (release / "manifest.json").is_file()
    assert (releases / "example" / "catalog.parquet").is_file()
    assert not (clients / "releases").exists()  # no other client's run
    verdict = json.loads((release / "manifest.json").read_text())["verdict"]

    # what Prefect's API tells the operator about the run
    done = _api(server, _RUN, "deliver-client/example-warehouse-pose")
    kind, name, message = done["state"]
    assert kind == "COMPLETED" and name == f"Published v0001 · {verdict}", done
    assert (
        f"verdict {verdict}: release {release};" in message and f"report {release}/qa/report.html" in message
    )
    assert name in done["last_log"] and message in done["last_log"], done["last_log"]
    ((sub, (sub_state, _)),) = done[
        "subflows"
    ].items()  # the delivery-run subflow, named apart from its parent
    assert sub == f"{done['name']}-delivery" and sub_state == name
    ((kind, key, markdown),) = done["artifacts"]
    assert (kind, key) == ("markdown", "example-warehouse-pose-delivery")
    assert f"`{release}`" in markdown and f"| verdict | **{verdict}** |" in markdown
    assert f"`{release}/qa/report.html`" in markdown and "## Sign-off reasons" in markdown

    assert broken.returncode != 0
    failed = _api(server, _RUN, "deliver-client/initech-people-demo")
    assert failed["state"][:2] == ["FAILED", "Failed"], failed
    reason = failed["state"][2]
    assert f"source folder {clients / 'initech' / 'batch'} does not exist" in reason and "\n" not in reason
    assert reason in failed["last_log"]
    ((kind, key, markdown),) = failed["artifacts"]
    assert key == "initech-people-demo-delivery" and reason in markdown
    worker_log = (work / "worker.log").read_text()
    assert "Traceback" not in worker_log and "Failed to send telemetry" not in worker_log, worker_log[-4000:]
    assert not (clients / "releases").exists()


def test_deploy_skips_configs_that_fail_the_check_and_deploys_the_others(server, clients, tmp_path):
    folder = tmp_path / "clients"
    folder.mkdir()
    (folder / "acme.yaml").write_text((clients / "clients" / "acme.yaml").read_text())
    (folder / "typo.yaml").write_text(
        (clients / "clients" / "globex.yaml").read_text().replace("schema: coco17", "schema: coco-17")
    )
    offline = yaml.safe_load((clients / "clients" / "globex.yaml").read_text())
    offline.update(
        client="offline",
        source="s3://kp-offline/batch",
        storage={"endpoint_url": "http://127.0.0.1:9"},
        releases=str(tmp_path / "releases"),
    )
    (folder / "offline.yaml").write_text(yaml.safe_dump(offline))
    env = {
        **server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    out = _kpdeliver(env, "deploy", str(folder))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "typo.yaml" in out.stderr and "unknown schema 'coco-17'" in out.stderr
    skipped = [line for line in out.stderr.splitlines() if "offline.yaml" in line]
    assert skipped and skipped[0].startswith("warning: skipped, not deployed:"), out.stderr
    assert "s3://kp-offline/batch cannot be read" in skipped[0] and "cannot be reached" in skipped[0]
    assert "acme-people-demo" in out.stdout and "2 configs skipped" in out.stdout
    assert "offline-people-demo" not in _deployments(server)

    (folder / "typo.yaml").unlink()  # --no-check: fields and isolation only, the source is not read
    unchecked = _kpdeliver(env, "deploy", "--no-check", str(folder))
    assert unchecked.returncode == 0 and "offline-people-demo" in unchecked.stdout, unchecked.stderr
    assert "offline-people-demo" in _deployments(server)
