"""A `kpdeliver pull` killed while it writes leaves nothing half-collected: every export file
under annotations/ is either the one of the previous pull or the complete new one, the killed
write's temp file is invisible to collect, and the next pull writes the rest.

The kill is deterministic: the pull runs in a subprocess whose `os.replace` SIGKILLs the process
at the rename of the second export file (the first one is then written, the second one's bytes
sit in a temp file that was never renamed). The seam lives in this test only."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.collect.exports import collect_exports
from kpdeliver.config import load_config
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.model import Dataset, Instances
from kpdeliver.storage import open_store
from kpdeliver.synth import make_demo_batch
from kpdeliver.tools.label_studio import LabelStudioClient, pull_batch
from tests.tools.test_label_studio_e2e import USERS, _annotate, _push

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOKEN_ENV = "KPDELIVER_TEST_LS_KILL_TOKEN"
EMAILS = {
    name: f"kill-{email}" for name, email in USERS.items()
}  # the e2e test's users exist in the same server

# Runs `kpdeliver pull` and SIGKILLs it at the rename of the KILL_AT-th export file it writes.
KILLED_PULL = """
import os, signal, sys
kill_at, real_replace, seen = int(sys.argv[2]), os.replace, []
def replace(src, dst, **kw):
    if str(dst).startswith("label-studio-"):
        seen.append(dst)
        if len(seen) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, **kw)
os.replace = replace
from kpdeliver.cli import app
app(["pull", "--config", sys.argv[1]])
"""


@pytest.fixture(scope="module")
def world(label_studio):
    root = label_studio.document_root / "killed"
    make_demo_batch(root, seed=11, n_images=8, annotators=tuple(USERS), overlap=0.3, n_gold=2)
    drawn = {a: (root / "batch" / "annotations" / a / "person_keypoints.json").read_bytes() for a in USERS}
    shutil.rmtree(root / "batch" / "annotations")
    cfg = yaml.safe_load((root / "client.yaml").read_text())
    cfg["client"] = "killco"  # its own projects, apart from the e2e test's
    cfg["tool"] = {
        "kind": "label-studio",
        "url": label_studio.url,
        "token_env": TOKEN_ENV,
        "document_root": str(label_studio.document_root),
        "users": {email: name for name, email in EMAILS.items()},
    }
    (root / "client.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    mp = pytest.MonkeyPatch()
    mp.setenv(TOKEN_ENV, label_studio.token)
    client = LabelStudioClient(label_studio.url, label_studio.token)
    user_ids = {
        name: client.call("POST", "/api/users/", json={"email": email, "username": f"kill_{name}"})["id"]
        for name, email in EMAILS.items()
    }
    yield {
        "root": root,
        "config": load_config(root / "client.yaml"),
        "client": client,
        "drawn": drawn,
        "user_ids": user_ids,
    }
    client.close()
    mp.undo()


def _exports(batch: Path) -> dict[str, bytes]:
    return {
        p.relative_to(batch).as_posix(): p.read_bytes()
        for p in (batch / "annotations").rglob("label-studio-*.json")
    }


def test_a_killed_pull_leaves_each_file_whole_and_the_next_pull_finishes(world, label_studio):
    config, client = world["config"], world["client"]
    schema = resolve_schema(config.schema_name)
    batch = Path(config.source)
    store = open_store(config.source)
    pushed = _push(world, schema)
    _annotate(world, schema)
    first = pull_batch(client, config, store)
    assert len(first.written) == 2
    old = _exports(batch)

    # new finished work in both projects: both export files must change
    for p in pushed:
        task = min(t["id"] for t in client.tasks(p.project))
        client.create_annotation(task, [], completed_by=world["user_ids"][p.annotator])

    env = {**os.environ, "PYTHONPATH": str(ROOT), TOKEN_ENV: label_studio.token}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_PULL, str(world["root"] / "client.yaml"), "2"],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]

    after_kill = _exports(batch)
    temps = [p for p in (batch / "annotations").rglob("*") if p.is_file() and p.name.startswith(".")]
    assert temps, "the kill came mid-write: the second file's bytes sit in an unrenamed temp file"
    assert all(p.parent.name in USERS for p in temps)
    assert not any(k.rsplit("/", 1)[-1].startswith(".") for k in store.list("annotations/")), (
        "temp files are not listed as batch files"
    )
    assert set(after_kill) == set(old)
    for data in after_kill.values():
        orjson.loads(data)  # every visible export parses whole

    again = pull_batch(client, config, store)
    new = _exports(batch)
    changed_by_kill = {k for k in old if after_kill[k] != old[k]}
    assert len(changed_by_kill) == 1, "the kill came after the first file and before the second"
    for key, data in after_kill.items():
        assert data in (old[key], new[key]), f"{key} is neither the old nor the new export"
        assert new[key] != old[key]
    assert sorted(again.written) == sorted(set(old) - changed_by_kill), "the next pull writes the rest"
    assert sorted(again.unchanged) == sorted(changed_by_kill), (
        "what the killed pull wrote is a full pull's bytes"
    )
    assert not pull_batch(client, config, store).changed

    images = ingest_images(store).images
    collected = collect_exports(
        store, Dataset(schema, images, Instances.empty(schema.num_keypoints)), config.annotators
    )
    assert not [f for f in collected.findings.to_pylist() if f["check"] == "collect.unreadable_file"]
    assert {s.rsplit("/", 1)[-1] for s in collected.dataset.instances.extra["source"]} <= {
        k.rsplit("/", 1)[-1] for k in new
    }, "no temp file was collected"
