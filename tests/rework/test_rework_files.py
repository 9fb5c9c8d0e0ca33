"""The rework loop without a live tool: deliver v0001 with the demo's planted mistakes, `rework`
writes task packages per annotator, the annotators edit them (one badly), the edited exports come
back through the normal collect path, v0002 delivers the fixes and says so, and a second
`rework` sends only what still fails. A client's feedback file with an unknown id is refused
naming it; with good ids it drives the same loop."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.codecs import cvat
from kpdeliver.config import load_config
from kpdeliver.schema import COCO17
from tests.rework.fixing import fixed_labels

pytestmark = pytest.mark.slow
runner = CliRunner()


def rework(root: Path, *args: str):
    return runner.invoke(app, ["rework", "--config", str(root / "client.yaml"), *args], terminal_width=200)


def ledger(root: Path) -> list[dict]:
    return orjson.loads((root / "batch" / "tasks" / "rework" / "ledger.json").read_bytes())


def return_fixes(root: Path, round_: str, bad: set[str]) -> dict[str, list[str]]:
    """Each annotator edits their package (the CVAT XML) and drops it where the README says."""
    batch, done = root / "batch", {}
    for pkg in sorted((batch / "tasks" / "rework" / round_).iterdir()):
        part = cvat.decode((pkg / "annotations.xml").read_bytes(), schema=COCO17, annotator=pkg.name).dataset
        out = batch / "annotations" / pkg.name / "rework" / round_
        out.mkdir(parents=True)
        (out / "annotations.xml").write_bytes(cvat.encode(fixed_labels(part, pkg.name, batch, bad=bad)))
        done[pkg.name] = part.images.file_name.tolist()
    return done


@pytest.fixture(scope="module")
def loop(tmp_path_factory, prefect_harness):
    from flows.delivery import delivery_run
    from kpdeliver.synth import make_demo_batch

    root = tmp_path_factory.mktemp("rework-files")
    make_demo_batch(root, seed=5, n_images=12, annotators=("ann_a", "ann_b"), overlap=0.3, n_gold=2)
    config = load_config(root / "client.yaml")
    v1 = delivery_run(config)
    state = {"root": root, "config": config, "v1": v1, "run": delivery_run}
    yield state


def test_feedback_with_an_unknown_id_is_refused_naming_it(loop):
    root = loop["root"]
    bad = root / "feedback.csv"
    bad.write_text(
        "file_name,annotation_id,reason\nscene_001.jpg,,elbow wrong\nnot_ours.jpg,,who?\n,987654,no\n"
    )
    before = sorted((root / "batch").rglob("*"))
    res = rework(root, "--from", str(bad))
    assert res.exit_code == 2
    assert "unknown file name not_ours.jpg" in res.output and "unknown annotation id 987654" in res.output
    assert sorted((root / "batch").rglob("*")) == before, "nothing is done"


def test_file_route_round_trip(loop):
    root, config, v1 = loop["root"], loop["config"], loop["v1"]
    rel1 = Path(v1.release)
    held = pq.read_table(rel1 / "qa" / "quarantine.parquet")
    annotations = pq.read_table(rel1 / "index" / "annotations.parquet").to_pylist()
    delivered = next(
        a for a in annotations if a["annotator"] == "ann_b"
    )  # the client rejects a delivered label
    feedback = root / "feedback.json"
    feedback.write_bytes(
        orjson.dumps([{"annotation_id": delivered["annotation_id"], "reason": "wrist is off"}])
    )

    res = rework(root, "--from", str(feedback), "--files")
    assert res.exit_code == 0, res.output
    sent = {(e["annotator"], e["file_name"]) for e in ledger(root)}
    expected = {
        (a, f)
        for a, f in zip(held["annotator"].to_pylist(), held["file_name"].to_pylist(), strict=True)
        if a and f and a != "gold"
    }
    assert expected <= sent, "every held-back label goes back to its annotator"
    assert ("ann_b", delivered["file_name"]) in sent
    for who in {a for a, _ in sent}:
        pkg = root / "batch" / "tasks" / "rework" / "r0001" / who
        assert {p.name for p in pkg.iterdir()} >= {
            "annotations.xml",
            "tasks.json",
            "label_config.xml",
            "rework.csv",
        }
        tasks = orjson.loads((pkg / "tasks.json").read_bytes())
        assert sorted(t["data"]["image"] for t in tasks) == sorted(f for a, f in sent if a == who)
        assert all(t["data"]["rework"] for t in tasks), "each task says why it came back"
    feedback_entry = next(
        e for e in ledger(root) if e["file_name"] == delivered["file_name"] and e["annotator"] == "ann_b"
    )
    assert feedback_entry["feedback"] == "feedback.json"
    assert (
        "wrist is off" in (root / "batch" / "tasks" / "rework" / "r0001" / "ann_b" / "rework.csv").read_text()
    )

    again = rework(root, "--files")
    assert again.exit_code == 0 and "nothing to send" in again.output, again.output
    assert len(ledger(root)) == len(sent), "an item out for rework is not sent twice"

    bad_item = sorted(f for a, f in expected if a == "ann_a")[0]
    return_fixes(root, "r0001", bad={bad_item})
    v2 = loop["run"](config)
    assert v2.version == 2
    rel2 = Path(v2.release)
    status = {
        (r["annotator"], r["file_name"]): r for r in pq.read_table(rel2 / "qa" / "rework.parquet").to_pylist()
    }
    assert set(status) == sent
    assert status[("ann_a", bad_item)]["status"] == "still failing"
    assert "bounds.visible_outside_image" in status[("ann_a", bad_item)]["new_findings"]
    fixed = {k for k, r in status.items() if r["status"] == "fixed"}
    assert fixed == sent - {("ann_a", bad_item)}, {k: r["new_findings"] for k, r in status.items()}
    images2 = {
        r["file_name"]: r["status"] for r in pq.read_table(rel2 / "index" / "images.parquet").to_pylist()
    }
    held1 = set(held["file_name"].drop_null().to_pylist())
    assert all(images2[f] == "delivered" for a, f in fixed if f in held1), (
        "a fixed item replaces its held-back original"
    )
    assert images2[bad_item] != "delivered", "a badly fixed item stays held back"
    changes = pq.read_table(rel2 / "qa" / "changes.parquet")
    rows = changes.filter(pc.equal(changes["item"], "rework")).to_pylist()
    assert {(r["file_name"], r["change"]) for r in rows} >= {(f, "fixed") for _, f in fixed} | {
        (bad_item, "still failing")
    }
    report = (rel2 / "qa" / "report.html").read_text()
    assert 'id="rework"' in report and f'data-rework-item="{bad_item}"' in report
    assert f'data-feedback="{delivered["file_name"]}"' in report, (
        "the client's feedback is answered in the report"
    )
    cards = {r["annotator"]: r for r in pq.read_table(rel2 / "qa" / "annotators.parquet").to_pylist()}
    assert cards["ann_a"]["n_rework_failing"] == 1
    assert sum(c["n_rework_fixed"] for c in cards.values()) == len(fixed)

    second = rework(root, "--files")
    assert second.exit_code == 0, second.output
    r2 = [e for e in ledger(root) if e["round"] == "r0002"]
    assert {(e["annotator"], e["file_name"]) for e in r2} == {("ann_a", bad_item)}, (
        "only what still fails goes back"
    )
