"""The rework loop against a real Label Studio: deliver v0001 with the demo's planted mistakes,
`kpdeliver rework` opens a rework project per annotator with their labels preloaded and the
finding's words on each task, the annotators fix the tasks through the API (one badly), `kpdeliver
pull` brings them back, and v0002 delivers the fixes, names them, keeps the bad fix held back
with its new finding; a second `rework` sends only what still fails."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.codecs import label_studio as ls_codec
from kpdeliver.config import load_config
from kpdeliver.schema import COCO17
from kpdeliver.tools.label_studio import LabelStudioClient
from kpdeliver.tools.label_studio.rework import REWORK_VERSION, rework_title
from tests.rework.fixing import fixed_labels

pytestmark = pytest.mark.slow

USERS = {"ann_a": "rework-ada@example.com", "ann_b": "rework-bo@example.com"}
TOKEN_ENV = "KPDELIVER_TEST_LS_REWORK_TOKEN"
runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args), terminal_width=200)


@pytest.fixture(scope="module")
def world(label_studio, tmp_path_factory, prefect_harness):
    from flows.delivery import delivery_run
    from kpdeliver.synth import make_demo_batch

    root = label_studio.document_root / "rework"
    make_demo_batch(root, seed=5, n_images=12, annotators=tuple(USERS), overlap=0.3, n_gold=2)
    cfg = yaml.safe_load((root / "client.yaml").read_text())
    cfg["dataset"] = "rework-pose"  # its own project titles on the shared server
    cfg["tool"] = {
        "kind": "label-studio",
        "url": label_studio.url,
        "token_env": TOKEN_ENV,
        "document_root": str(label_studio.document_root),
        "users": {email: name for name, email in USERS.items()},
    }
    (root / "client.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    mp = pytest.MonkeyPatch()
    mp.setenv(TOKEN_ENV, label_studio.token)
    client = LabelStudioClient(label_studio.url, label_studio.token)
    ids = {
        name: client.call("POST", "/api/users/", json={"email": email, "username": f"rework-{name}"})["id"]
        for name, email in USERS.items()
    }
    config = load_config(root / "client.yaml")
    v1 = delivery_run(config)
    yield {"root": root, "config": config, "client": client, "ids": ids, "v1": v1, "run": delivery_run}
    client.close()
    mp.undo()


def _rework_tasks(world, annotator: str, round_: str) -> list[dict]:
    project = world["client"].project_by_title(rework_title(world["config"], annotator, round_))
    return [] if project is None else world["client"].tasks(project.id)


def _fix_in_the_tool(world, tasks: list[dict], annotator: str, bad: set[str]) -> None:
    """The annotator opens each rework task, corrects the preloaded labels and submits."""
    client, batch = world["client"], world["root"] / "batch"
    for task in tasks:
        name = task["data"]["file_name"]
        predictions = client.call("GET", "/api/predictions/", params={"task": task["id"]})
        mine = ls_codec.decode(
            orjson.dumps([{"id": task["id"], "data": {"image": name}, "predictions": predictions}]),
            schema=COCO17,
        ).dataset
        fixed = fixed_labels(mine, annotator, batch, bad=bad)
        result = orjson.loads(ls_codec.encode(fixed, as_predictions=False))[0]["annotations"][0]["result"]
        client.create_annotation(task["id"], result, completed_by=world["ids"][annotator])


def test_rework_through_label_studio(world):
    root, config, v1 = world["root"], world["config"], world["v1"]
    held = pq.read_table(Path(v1.release) / "qa" / "quarantine.parquet")
    expected = {
        (a, f)
        for a, f in zip(held["annotator"].to_pylist(), held["file_name"].to_pylist(), strict=True)
        if a and f and a != "gold"
    }
    res = cli("rework", "--config", str(root / "client.yaml"))
    assert res.exit_code == 0, res.output
    tasks = {a: _rework_tasks(world, a, "r0001") for a in USERS}
    sent = {(a, t["data"]["file_name"]) for a, ts in tasks.items() for t in ts}
    assert expected <= sent, "every held-back label goes back to the annotator who made it"
    for ts in tasks.values():
        for t in ts:
            assert t["data"]["rework"].startswith("["), "the finding's words are on the task"
        preloaded = [
            p for t in ts for p in world["client"].call("GET", "/api/predictions/", params={"task": t["id"]})
        ]
        assert preloaded and {p["model_version"] for p in preloaded} == {REWORK_VERSION}, (
            "their labels are preloaded"
        )
    project = world["client"].project_by_title(rework_title(config, "ann_a", "r0001"))
    assert '<Header value="$rework"/>' in project.label_config

    again = cli("rework", "--config", str(root / "client.yaml"))
    assert again.exit_code == 0 and "nothing to send" in again.output, again.output
    assert {a: len(_rework_tasks(world, a, "r0001")) for a in USERS} == {
        a: len(ts) for a, ts in tasks.items()
    }

    bad_item = sorted(f for a, f in expected if a == "ann_a")[0]
    for a, ts in tasks.items():
        _fix_in_the_tool(world, ts, a, {bad_item})
    pulled = cli("pull", "--config", str(root / "client.yaml"))
    assert pulled.exit_code == 0, pulled.output
    assert {
        p.parent.name for p in (root / "batch" / "annotations").glob("*/rework/*/label-studio-*.json")
    } == {"r0001"}

    v2 = world["run"](config)
    rel2 = Path(v2.release)
    assert v2.version == 2
    status = {
        (r["annotator"], r["file_name"]): r for r in pq.read_table(rel2 / "qa" / "rework.parquet").to_pylist()
    }
    assert set(status) == sent
    assert status[("ann_a", bad_item)]["status"] == "still failing"
    assert "bounds.visible_outside_image" in status[("ann_a", bad_item)]["new_findings"]
    fixed = {k for k, r in status.items() if r["status"] == "fixed"}
    assert fixed == sent - {("ann_a", bad_item)}
    images2 = {
        r["file_name"]: r["status"] for r in pq.read_table(rel2 / "index" / "images.parquet").to_pylist()
    }
    held1 = set(held["file_name"].drop_null().to_pylist())
    assert all(images2[f] == "delivered" for _, f in fixed if f in held1), "v0002 delivers the fixed items"
    assert images2[bad_item] != "delivered", "the badly fixed item stays held back"
    changes = pq.read_table(rel2 / "qa" / "changes.parquet")
    rows = {
        (r["file_name"], r["change"]) for r in changes.filter(pc.equal(changes["item"], "rework")).to_pylist()
    }
    assert rows >= {(f, "fixed") for _, f in fixed} | {(bad_item, "still failing")}
    report = (rel2 / "qa" / "report.html").read_text()
    assert f'data-rework-item="{bad_item}"' in report and 'data-rework="fixed"' in report

    second = cli("rework", "--config", str(root / "client.yaml"))
    assert second.exit_code == 0, second.output
    assert [t["data"]["file_name"] for t in _rework_tasks(world, "ann_a", "r0002")] == [bad_item]
    assert _rework_tasks(world, "ann_b", "r0002") == [], "only what still fails goes back"
