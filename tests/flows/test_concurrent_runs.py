"""Deliveries started together on one host, on the embedded default (no Prefect API configured),
all succeed and publish. Each once started Prefect's ephemeral server on a random port checked
free a moment before: two runs could take the same one ("address already in use"), and a run
whose server lost then talked to its neighbour's until that one stopped (`internal error:
ConnectError`); two servers starting on a fresh Prefect home both created its database and failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kpdeliver.synth import make_demo_batch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIENTS, ROUNDS = 3, 5


@pytest.fixture(scope="module")
def batches(tmp_path_factory) -> Path:
    """A small synthetic batch per client, under one folder."""
    root = tmp_path_factory.mktemp("concurrent")
    for i in range(CLIENTS):
        make_demo_batch(root / f"client{i}", seed=i, n_images=6, n_gold=1)
    return root


def _config(batches: Path, client: int, run: int) -> Path:
    """Client `client`'s config for round `run`: each round publishes into fresh releases (one
    config per folder: the isolation check reads every config beside it)."""
    path = batches / f"client{client}" / "client.yaml"
    config = yaml.safe_load(path.read_text()) | {
        "client": f"client{client}",
        "releases": f"../releases-{run}",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_three_deliveries_started_together_all_publish(batches):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # the embedded default
    env["PYTHONPATH"] = str(ROOT)
    work = batches / "work"  # one work folder: one Prefect home for every run, fresh at the first round
    for run in range(ROUNDS):
        runs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from kpdeliver.cli import main; main()",
                    "deliver",
                    "--config",
                    str(_config(batches, i, run)),
                    "--work",
                    str(work),
                ],
                cwd=batches,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i in range(CLIENTS)
        ]
        outputs = [p.communicate(timeout=900)[0] for p in runs]
        for i, (p, out) in enumerate(zip(runs, outputs)):
            assert p.returncode == 0, f"round {run}, client{i}: exit {p.returncode}\n{out[-2000:]}"
            assert (
                batches / f"releases-{run}" / f"client{i}" / "people-demo" / "v0001" / "manifest.json"
            ).is_file()
