"""Push a batch to a real Label Studio, annotate it through the API as two annotators (with the
demo batch's planted mistakes, among them a left/right swap on a gold image), pull, and run
collect + validation + deep QA on what was pulled, as a delivery does."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import numpy as np
import orjson
import pyarrow.compute as pc
import pytest
import yaml
from PIL import Image

from kpdeliver.assign.assignments import assign_annotators
from kpdeliver.codecs import coco
from kpdeliver.codecs import label_studio as ls_codec
from kpdeliver.codecs.protocol import DecodeOptions
from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.collect.exports import collect_exports
from kpdeliver.config import load_config
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.model import Dataset, Instances
from kpdeliver.storage import open_store
from kpdeliver.synth import make_demo_batch
from kpdeliver.tools.label_studio import LabelStudioClient, pull_batch, push_batch, with_task_links
from kpdeliver.tools.label_studio.pull import BOX_ID_BASE
from kpdeliver.tools.label_studio.push import PRELABEL_VERSION, prelabels_on_batch

pytestmark = pytest.mark.slow

USERS = {"ann_a": "ada@example.com", "ann_b": "bo@example.com"}
TOKEN_ENV = "KPDELIVER_TEST_LS_TOKEN"


@pytest.fixture(scope="module")
def world(label_studio, tmp_path_factory, monkeypatch_module):
    """The demo batch under the server's document root, its annotators' labels moved aside (they
    are what the two people will draw in the tool), and a client config with a tool: section."""
    root = label_studio.document_root / "acme"
    make_demo_batch(root, seed=5, n_images=10, annotators=tuple(USERS), overlap=0.3, n_gold=2)
    drawn = {a: (root / "batch" / "annotations" / a / "person_keypoints.json").read_bytes() for a in USERS}
    shutil.rmtree(root / "batch" / "annotations")
    cfg = yaml.safe_load((root / "client.yaml").read_text())
    cfg["tool"] = {
        "kind": "label-studio",
        "url": label_studio.url,
        "token_env": TOKEN_ENV,
        "document_root": str(label_studio.document_root),
        "users": {email: name for name, email in USERS.items()},
    }
    (root / "client.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    monkeypatch_module.setenv(TOKEN_ENV, label_studio.token)
    config = load_config(root / "client.yaml")
    client = LabelStudioClient(label_studio.url, label_studio.token)
    user_ids = {}
    for name, email in USERS.items():
        user = client.call("POST", "/api/users/", json={"email": email, "username": name, "first_name": name})
        user_ids[name] = user["id"]
    yield {
        "root": root,
        "config": config,
        "client": client,
        "drawn": drawn,
        "user_ids": user_ids,
        "truth": orjson.loads((root / "truth.json").read_bytes()),
    }
    client.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _push(world, schema, *, prelabels: Path | None = None):
    config = world["config"]
    store = open_store(config.source)
    images = ingest_images(store).images
    labels = None
    if prelabels is not None:
        batch = Dataset(schema, images, Instances.empty(schema.num_keypoints))
        labels = prelabels_on_batch(
            coco.decode(prelabels.read_bytes(), schema=schema).dataset, batch, source="model"
        )
    return push_batch(
        world["client"],
        config,
        assign_annotators(images, config.annotators, config.assignment),
        schema=schema,
        prelabels=labels,
    )


def _gold_instances(config, file_name: str, schema) -> int:
    gold = coco.decode(
        (Path(config.source) / "gold" / "person_keypoints.json").read_bytes(), schema=schema
    ).dataset
    image_ids = gold.images.id[gold.images.file_name == file_name]
    return int(np.isin(gold.instances.image_id, image_ids).sum())


def _annotate(world, schema) -> dict[str, int]:
    """Each annotator submits their labels for every task of their project; ann_b also skips
    nothing but leaves one draft, ann_a skips one image. Returns finished annotations per person."""
    client, config = world["client"], world["config"]
    finished = {}
    for name in USERS:
        decoded = coco.decode(world["drawn"][name], schema=schema, source=name)
        ds = decoded.dataset
        known = np.isin(
            ds.instances.image_id, ds.images.id
        )  # the demo's unknown-image mistake cannot be drawn
        ds = ds.replace(instances=ds.instances.take(np.flatnonzero(known)))
        regions = {
            t["data"]["image"]: t["annotations"][0]["result"]
            for t in orjson.loads(ls_codec.encode(ds, as_predictions=False))
        }
        title = config.tool.project_title(client=config.client, dataset=config.dataset, annotator=name)
        tasks = client.tasks(client.project_by_title(title).id)
        finished[name] = 0
        for _n, task in enumerate(sorted(tasks, key=lambda t: t["id"])):
            result = regions.get(task["data"]["file_name"], [])
            client.create_annotation(task["id"], result, completed_by=world["user_ids"][name])
            finished[name] += 1
        last = max(t["id"] for t in tasks)
        if name == "ann_a":
            client.create_annotation(last, [], completed_by=world["user_ids"][name], was_cancelled=True)
        else:
            client.call("POST", f"/api/tasks/{last}/drafts", json={"result": [], "lead_time": 1.0})
    return finished


def test_push_annotate_pull_collect_and_qa(world, label_studio):
    config, client = world["config"], world["client"]
    schema = resolve_schema(config.schema_name)
    store = open_store(config.source)
    images = ingest_images(store).images
    assignments = assign_annotators(images, config.annotators, config.assignment)

    gold_file = Path(config.source) / "gold" / "person_keypoints.json"  # stands in for a model's output
    pushed = _push(world, schema, prelabels=gold_file)
    assert [p.created for p in pushed] == [True, True]
    assert [p.predictions for p in pushed] == [len(config.assignment.gold)] * 2
    for p in pushed:
        mine = assignments.filter(pc.equal(assignments["annotator"], p.annotator))
        tasks = client.tasks(p.project)
        assert sorted(t["data"]["file_name"] for t in tasks) == sorted(mine["file_name"].to_pylist())
        roles = {t["data"]["file_name"]: t["data"]["role"] for t in tasks}
        assert {n for n, r in roles.items() if r == "gold"} == set(config.assignment.gold)
        for t in tasks:
            predictions = client.call("GET", "/api/predictions/", params={"task": t["id"]})
            assert [x["model_version"] for x in predictions] == (
                [PRELABEL_VERSION] if roles[t["data"]["file_name"]] == "gold" else []
            )
            if predictions:
                decoded = ls_codec.CODEC.decode(
                    orjson.dumps([{**t, "predictions": predictions}]), DecodeOptions(schema=schema)
                ).dataset
                assert len(decoded.instances) == _gold_instances(config, t["data"]["file_name"], schema)
    # the tool serves the batch's own bytes through the local-files storage
    task = client.tasks(pushed[0].project)[0]
    served = httpx.get(
        label_studio.url + task["data"]["image"], headers={"Authorization": f"Token {label_studio.token}"}
    )
    assert served.status_code == 200
    assert served.content == (Path(config.source) / "images" / task["data"]["file_name"]).read_bytes()

    assert not any(p.changed for p in _push(world, schema)), "a second push must change nothing"

    finished = _annotate(world, schema)
    report = pull_batch(client, config, store)
    assert sorted(report.written) == sorted(
        f"annotations/{a}/label-studio-{p.project}.json" for a, p in zip(USERS, pushed)
    )
    by_annotator = {p.annotator: p for p in report.projects}
    assert {a: by_annotator[a].finished for a in USERS} == finished
    assert by_annotator["ann_a"].skipped == 1 and by_annotator["ann_b"].drafts == 1
    assert not any(p.unmapped for p in report.projects)

    again = pull_batch(client, config, store)
    assert not again.changed and sorted(again.unchanged) == sorted(report.written), (
        "a second pull must change nothing"
    )

    batch = Dataset(schema, images, Instances.empty(schema.num_keypoints))
    collected = collect_exports(store, batch, config.annotators)
    ins = collected.dataset.instances
    assert set(ins.annotator.tolist()) == set(USERS), "both annotators' labels are collected"
    assert not (ins.image_id < 0).any(), "every pulled instance lands on a batch image"
    assert collected.gold is not None and len(collected.gold.instances)
    # audit columns: the export file names the project, image ids are task ids, ids carry the annotation
    project_of = {p.annotator: p.project for p in pushed}
    for who, src, task_id, src_id in zip(
        ins.annotator, ins.extra["source"], ins.extra["source_image_id"], ins.extra["source_id"]
    ):
        assert src == f"annotations/{who}/label-studio-{project_of[who]}.json"
        ls_task = client.call("GET", f"/api/tasks/{int(task_id)}")
        assert int(src_id) // BOX_ID_BASE in {a["id"] for a in ls_task["annotations"]}

    from expectations import validate_dataset
    from kpdeliver.findings import concat_findings
    from kpdeliver.qa import run_deep_qa

    rules = validate_dataset(collected.everything, config.validation)
    qa = run_deep_qa(collected.dataset, gold=collected.gold, settings=config.deep_qa)
    findings = with_task_links(
        concat_findings([collected.findings, rules.findings, qa.findings]),
        collected.everything,
        config.tool.url,
    )

    swap = next(m for m in world["truth"]["mistakes"] if m["kind"] == "left_right_swap")
    hits = findings.filter(
        pc.and_(
            pc.equal(findings["check"], "qa.left_right_swap"),
            pc.equal(findings["annotator"], swap["annotator"]),
        )
    ).to_pylist()
    hit = next(h for h in hits if h["file_name"] == swap["file_name"])
    cards = {r["annotator"]: r for r in qa.annotators.to_pylist()}
    assert all(cards[a]["n_gold"] > 0 and cards[a]["gold_oks"] is not None for a in USERS), "gold was used"

    # the finding's link opens the task of that annotator's project holding that image
    assert hit["link"].startswith(f"{label_studio.url}/projects/{project_of[swap['annotator']]}/data?task=")
    task_id = int(hit["link"].rsplit("=", 1)[1])
    linked = client.call("GET", f"/api/tasks/{task_id}")
    assert linked["project"] == project_of[swap["annotator"]]
    assert linked["data"]["file_name"] == swap["file_name"]


def test_a_new_image_is_added_once(world, label_studio):
    config, client = world["config"], world["client"]
    schema = resolve_schema(config.schema_name)
    images_dir = Path(config.source) / "images"
    before = {p.annotator: len(client.tasks(p.project)) for p in _push(world, schema)}
    Image.new("RGB", (320, 240), (90, 120, 150)).save(images_dir / "late_arrival.jpg")
    added = _push(world, schema)
    assert sum(p.tasks_added for p in added) >= 1
    assert not any(p.changed for p in _push(world, schema))
    for p in added:
        names = [t["data"]["file_name"] for t in client.tasks(p.project)]
        assert len(names) == len(set(names)) == before[p.annotator] + p.tasks_added


def test_a_delivery_reads_the_pulled_work(world, prefect_harness):
    """The release of a delivery run after the pull: both annotators' labels, the swap caught
    against gold, findings pointing at the pulled export files."""
    import pyarrow.parquet as pq

    from flows.delivery import delivery_run

    release = Path(delivery_run(world["config"]).release)
    delivered = pq.read_table(release / "index" / "annotations.parquet")
    assert set(USERS) <= set(delivered["annotator"].to_pylist())
    findings = pq.read_table(release / "qa" / "findings.parquet").to_pylist()
    swap = next(m for m in world["truth"]["mistakes"] if m["kind"] == "left_right_swap")
    caught = [
        f
        for f in findings
        if f["check"] == "qa.left_right_swap"
        and f["annotator"] == swap["annotator"]
        and f["file_name"] == swap["file_name"]
    ]
    assert caught and caught[0]["source"].startswith(f"annotations/{swap['annotator']}/label-studio-")
    assert any(f["check"] == "qa.gold_mismatch" for f in findings), "gold labels were compared"


def test_the_commands_repeat_as_no_ops(world):
    """`kpdeliver push` / `pull` on an up-to-date tool change nothing, and say so."""
    from typer.testing import CliRunner

    from kpdeliver.cli import app

    config = str(world["root"] / "client.yaml")
    pushed = CliRunner().invoke(app, ["push", "--config", config])
    assert pushed.exit_code == 0, pushed.output
    assert "nothing to change" in pushed.output
    pulled = CliRunner().invoke(app, ["pull", "--config", config])
    assert pulled.exit_code == 0, pulled.output
    assert "nothing new: 2 exports unchanged" in pulled.output


def test_a_missing_token_is_one_clear_sentence(world, monkeypatch):
    from typer.testing import CliRunner

    from kpdeliver.cli import app

    monkeypatch.delenv(TOKEN_ENV)
    out = CliRunner().invoke(app, ["pull", "--config", str(world["root"] / "client.yaml")])
    assert out.exit_code == 2
    assert f"environment variable {TOKEN_ENV} is not set" in out.output
