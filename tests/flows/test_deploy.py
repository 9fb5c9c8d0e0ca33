"""`kpdeliver deploy` against a real `prefect server` on loopback: two client configs give two
scheduled deployments; a process worker runs one of them to a published, catalogued release."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from kpdeliver.synth import make_demo_batch
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
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PYTHONPATH": str(ROOT), "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(url, proc)
        yield {**env, "PREFECT_API_URL": url}
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def clients(tmp_path_factory) -> Path:
    """Two clients, each with its own demo batch, sharing one releases root."""
    root = tmp_path_factory.mktemp("ops")
    (root / "clients").mkdir()
    for name, seed, schedule in (("acme", 1, {"cron": "0 6 * * 1", "timezone": "UTC"}),
                                 ("globex", 2, {"cron": "30 5 * * *", "timezone": "Europe/Berlin"})):
        cfg = yaml.safe_load(make_demo_batch(root / name, seed=seed, n_images=12).read_text())
        cfg.update(client=name, source=str(root / name / "batch"), releases=str(root / "releases"), schedule=schedule)
        (root / "clients" / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    (root / "clients" / "notes.yaml").write_text("not: a client config\n")
    return root


def _kpdeliver(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from kpdeliver.cli import main; main()", *args], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=180)


def _deployments(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", """
import json
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as c:
    print(json.dumps({d.name: {"params": d.parameters, "pool": d.work_pool_name,
                               "crons": [(s.schedule.cron, s.schedule.timezone) for s in d.schedules]}
                      for d in c.read_deployments()}))
"""], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_deploy_registers_one_scheduled_deployment_per_client_and_a_worker_runs_one(server, clients):
    first = _kpdeliver(server, "deploy", str(clients / "clients"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created work pool kpdeliver-process" in first.stdout
    again = _kpdeliver(server, "deploy", str(clients / "clients"))  # idempotent: updates, creates nothing
    assert again.returncode == 0 and "created work pool" not in again.stdout, again.stderr

    found = _deployments(server)
    assert set(found) == {"acme-people-demo", "globex-people-demo"}
    assert found["acme-people-demo"]["crons"] == [["0 6 * * 1", "UTC"]]
    assert found["globex-people-demo"]["crons"] == [["30 5 * * *", "Europe/Berlin"]]
    assert found["acme-people-demo"]["params"] == {"config_path": str(clients / "clients" / "acme.yaml")}
    assert {d["pool"] for d in found.values()} == {"kpdeliver-process"}

    work = clients / "worker"
    work.mkdir()
    log = open(work / "worker.log", "wb")
    worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "kpdeliver-process"],
                              env={**server, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}, cwd=work,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        run = subprocess.run([str(BIN / "prefect"), "deployment", "run", "deliver-client/acme-people-demo",
                              "--watch", "--watch-timeout", "600"], env=server, cwd=work, capture_output=True,
                             text=True, timeout=660)
    finally:
        _stop(worker, signals=2)
        log.close()
    assert run.returncode == 0, run.stdout + run.stderr + (work / "worker.log").read_text()[-3000:]
    assert "COMPLETED" in run.stdout.upper()
    assert "acme-people-demo-20" in run.stdout  # the run is named <client>-<dataset>-<date>
    release = clients / "releases" / "acme" / "people-demo" / "v0001"
    assert (release / "manifest.json").is_file()
    assert (clients / "releases" / "acme" / "catalog.parquet").is_file()
    assert not (clients / "releases" / "globex").exists()


def test_deploy_reports_a_broken_config_and_deploys_the_others(server, clients, tmp_path):
    folder = tmp_path / "clients"
    folder.mkdir()
    (folder / "acme.yaml").write_text((clients / "clients" / "acme.yaml").read_text())
    (folder / "typo.yaml").write_text((clients / "clients" / "globex.yaml").read_text().replace(
        "schema: coco17", "schema: coco-17"))
    out = _kpdeliver(server, "deploy", str(folder))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "typo.yaml" in out.stderr and "unknown schema 'coco-17'" in out.stderr
    assert "acme-people-demo" in out.stdout
