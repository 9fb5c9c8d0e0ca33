"""A batch on S3 (moto on loopback) pushed to a real Label Studio through its S3 import storage:
the server fetches the images itself with the credentials push sent (from the variables the
config names), annotators label through the API, pull writes their work back into the bucket,
and a delivery reads it with task links, as for a local batch. `kpdeliver rework` then sends the
held-back labels to rework projects read through the same S3 storage; the fixes pulled from them
are delivered in v0002."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from kpdeliver.assign.assignments import assign_annotators
from kpdeliver.cli import app
from kpdeliver.codecs import coco
from kpdeliver.codecs import label_studio as ls_codec
from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.config import load_config
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.schema import COCO17
from kpdeliver.storage import LocalStore, open_store
from kpdeliver.synth import make_demo_batch
from kpdeliver.tools.label_studio import LabelStudioClient, ToolError, pull_batch, push_batch
from kpdeliver.tools.label_studio.rework import rework_title
from tests.rework.fixing import fixed_labels
from tests.s3_server import make_bucket

pytestmark = pytest.mark.slow

USERS = {"ann_c": "cy@example.com", "ann_d": "di@example.com"}
KEY_ENV, SECRET_ENV = "KPDELIVER_TEST_LS_S3_KEY", "KPDELIVER_TEST_LS_S3_SECRET"
SECRET = "s3-secret-never-shown-0123456789"
runner = CliRunner()


@pytest.fixture(scope="module")
def s3_world(label_studio, s3_endpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("s3-batch")
    make_demo_batch(root, seed=7, n_images=6, annotators=tuple(USERS), overlap=0.3, n_gold=1)
    drawn = {a: (root / "batch" / "annotations" / a / "person_keypoints.json").read_bytes() for a in USERS}
    bucket = make_bucket(s3_endpoint)
    source = f"s3://{bucket}/clients/demo/2026-12"
    local, remote = LocalStore(root / "batch"), open_store(source, {"endpoint_url": s3_endpoint})
    for (
        key
    ) in local.list():  # the bucket gets no annotations: those come from the tool (kept here for the fixes)
        if not key.startswith("annotations/"):
            remote.put(key, local.get(key))
    cfg = yaml.safe_load((root / "client.yaml").read_text())
    cfg.update(source=source, dataset="people-s3", storage={"endpoint_url": s3_endpoint})
    cfg["tool"] = {
        "url": label_studio.url,
        "token_env": "KPDELIVER_TEST_LS_TOKEN",
        "users": {email: name for name, email in USERS.items()},
        "s3": {
            "endpoint_url": s3_endpoint,
            "access_key_env": KEY_ENV,
            "secret_key_env": SECRET_ENV,
            "session_token_env": None,
            "presign_ttl": 5,
        },
    }
    (root / "client.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    mp = pytest.MonkeyPatch()
    mp.setenv("KPDELIVER_TEST_LS_TOKEN", label_studio.token)
    mp.setenv(KEY_ENV, "testing")
    mp.setenv(SECRET_ENV, SECRET)
    client = LabelStudioClient(label_studio.url, label_studio.token)
    ids = {
        name: client.call("POST", "/api/users/", json={"email": email, "username": name})["id"]
        for name, email in USERS.items()
    }
    yield {
        "root": root,
        "config": load_config(root / "client.yaml"),
        "client": client,
        "drawn": drawn,
        "ids": ids,
        "store": remote,
        "local": local,
    }
    client.close()
    mp.undo()


def _push(world):
    config, store = world["config"], world["store"]
    images = ingest_images(store).images
    return push_batch(
        world["client"],
        config,
        assign_annotators(images, config.annotators, config.assignment),
        schema=resolve_schema(config.schema_name),
    )


def _served(task: dict, label_studio, world) -> None:
    """The server reads the task's image itself: its resolve endpoint redirects to a presigned URL
    on the S3 server, which serves the batch image byte for byte."""
    bucket, prefix = world["config"].source.removeprefix("s3://").split("/", 1)
    resolve, fileuri = task["data"]["image"].split("?fileuri=")
    assert resolve == f"{label_studio.url}/tasks/{task['id']}/resolve/"
    assert (
        base64.urlsafe_b64decode(fileuri).decode()
        == f"s3://{bucket}/{prefix}/images/{task['data']['file_name']}"
    )
    served = httpx.get(
        task["data"]["image"], follow_redirects=True, headers={"Authorization": f"Token {label_studio.token}"}
    )
    assert served.status_code == 200 and "X-Amz-Signature" in str(served.url)
    assert served.content == world["local"].get(f"images/{task['data']['file_name']}")


def _s3_storage(client: LabelStudioClient, project: int, world) -> None:
    bucket, prefix = world["config"].source.removeprefix("s3://").split("/", 1)
    [storage] = client.s3_storages(project)
    assert (storage["bucket"], storage["prefix"], storage["presign"]) == (bucket, f"{prefix}/images", True)
    assert SECRET not in orjson.dumps(storage).decode(), "the server never hands the secret back"


@pytest.fixture(scope="module")
def delivered(s3_world, label_studio, prefect_harness):
    """Pushed, labelled by both annotators (the demo's planted mistakes included), pulled and delivered as v0001."""
    config, client, store = s3_world["config"], s3_world["client"], s3_world["store"]
    schema = resolve_schema(config.schema_name)
    pushed = _push(s3_world)
    assert [p.created and p.storage_created for p in pushed] == [True, True]
    for p in pushed:
        _s3_storage(client, p.project, s3_world)
    _served(client.tasks(pushed[0].project)[0], label_studio, s3_world)
    assert not any(p.changed for p in _push(s3_world)), "a second push changes nothing"

    for name in USERS:  # each annotator submits what they drew for every task of their project
        ds = coco.decode(s3_world["drawn"][name], schema=schema, source=name).dataset
        known = np.isin(
            ds.instances.image_id, ds.images.id
        )  # the demo's unknown-image mistake cannot be drawn
        ds = ds.replace(instances=ds.instances.take(np.flatnonzero(known)))
        regions = {
            t["data"]["image"]: t["annotations"][0]["result"]
            for t in orjson.loads(ls_codec.encode(ds, as_predictions=False))
        }
        project = next(p.project for p in pushed if p.annotator == name)
        for t in client.tasks(project):
            client.create_annotation(
                t["id"], regions.get(t["data"]["file_name"], []), completed_by=s3_world["ids"][name]
            )
    report = pull_batch(client, config, store)

    from flows.delivery import delivery_run

    return {"pushed": pushed, "pulled": report, "v1": delivery_run(config), "run": delivery_run}


def test_an_s3_batch_is_pushed_read_by_the_server_annotated_pulled_and_delivered(
    s3_world, delivered, label_studio
):
    store, pushed, report = s3_world["store"], delivered["pushed"], delivered["pulled"]
    assert sorted(report.written) == sorted(
        f"annotations/{p.annotator}/label-studio-{p.project}.json" for p in pushed
    )
    assert all(store.exists(key) for key in report.written), "the pulled work is in the bucket"

    release = Path(delivered["v1"].release)  # releases stay in the local folder of the demo config
    delivered_rows = pq.read_table(release / "index" / "annotations.parquet")
    findings = pq.read_table(release / "qa" / "findings.parquet").to_pylist()
    linked = [f for f in findings if f["link"]]
    assert linked and all(f["link"].startswith(f"{label_studio.url}/projects/") for f in linked)
    assert all(f["source"].startswith(f"annotations/{f['annotator']}/label-studio-") for f in linked)
    # every annotator's pulled work reached the release (delivered, or held out with linked findings)
    assert set(USERS) <= set(delivered_rows["annotator"].to_pylist()) | {f["annotator"] for f in linked}


def _fix_in_the_tool(world, tasks: list[dict], annotator: str) -> None:
    """The annotator opens each rework task, corrects the preloaded labels and submits."""
    client = world["client"]
    for task in tasks:
        predictions = client.call("GET", "/api/predictions/", params={"task": task["id"]})
        mine = ls_codec.decode(
            orjson.dumps(
                [{"id": task["id"], "data": {"image": task["data"]["file_name"]}, "predictions": predictions}]
            ),
            schema=COCO17,
        ).dataset
        fixed = fixed_labels(mine, annotator, world["root"] / "batch")
        result = orjson.loads(ls_codec.encode(fixed, as_predictions=False))[0]["annotations"][0]["result"]
        client.create_annotation(task["id"], result, completed_by=world["ids"][annotator])


def test_rework_of_an_s3_batch_is_read_through_s3_pulled_and_delivered(s3_world, delivered, label_studio):
    config, client, yaml_path = s3_world["config"], s3_world["client"], str(s3_world["root"] / "client.yaml")
    held = pq.read_table(Path(delivered["v1"].release) / "qa" / "quarantine.parquet")
    expected = {
        (a, f)
        for a, f in zip(held["annotator"].to_pylist(), held["file_name"].to_pylist(), strict=True)
        if a and f and a != "gold"
    }
    assert expected, "the demo's planted mistakes hold labels back"
    res = runner.invoke(app, ["rework", "--config", yaml_path], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert SECRET not in res.output
    assert s3_world["store"].exists("tasks/rework/ledger.json"), (
        "the round is recorded beside the batch, in the bucket"
    )
    projects = {a: client.project_by_title(rework_title(config, a, "r0001")) for a in USERS}
    tasks = {a: client.tasks(p.id) for a, p in projects.items() if p is not None}
    sent = {(a, t["data"]["file_name"]) for a, ts in tasks.items() for t in ts}
    assert expected <= sent, "every held-back label goes back to the annotator who made it"
    for a, ts in tasks.items():
        _s3_storage(client, projects[a].id, s3_world)
        _served(ts[0], label_studio, s3_world)  # the rework task's image is read through the S3 storage
        _fix_in_the_tool(s3_world, ts, a)

    pulled = runner.invoke(app, ["pull", "--config", yaml_path], terminal_width=200)
    assert pulled.exit_code == 0, pulled.output
    assert sorted(k for k in s3_world["store"].list("annotations/") if "/rework/" in k) == sorted(
        f"annotations/{a}/rework/r0001/label-studio-{p.id}.json" for a, p in projects.items() if p is not None
    )

    v2 = delivered["run"](config)
    rel2 = Path(v2.release)
    assert v2.version == 2
    status = {
        (r["annotator"], r["file_name"]): r["status"]
        for r in pq.read_table(rel2 / "qa" / "rework.parquet").to_pylist()
    }
    assert status == dict.fromkeys(sent, "fixed")
    images2 = {
        r["file_name"]: r["status"] for r in pq.read_table(rel2 / "index" / "images.parquet").to_pylist()
    }
    assert all(images2[f] == "delivered" for _, f in expected), "v0002 delivers the fixed items"


def test_missing_credentials_or_a_wrong_bucket_stop_the_push_before_any_project(s3_world, monkeypatch):
    config, client = s3_world["config"], s3_world["client"]
    before = {p.id for p in client.projects()}
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ToolError, match=f"environment variable {SECRET_ENV} is not set"):
        _push(s3_world)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    other = config.model_copy(
        update={"source": config.source.replace("/clients/", "/nowhere/"), "dataset": "people-s3-missing"}
    )
    images = ingest_images(s3_world["store"]).images
    with pytest.raises(ToolError, match="cannot read s3://") as e:
        push_batch(
            client,
            other,
            assign_annotators(images, other.annotators, other.assignment),
            schema=resolve_schema(other.schema_name),
        )
    assert SECRET not in str(e.value)
    assert {p.id for p in client.projects()} == before, "nothing was created"
