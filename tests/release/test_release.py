"""The publication protocol on the local store: staging, claims, manifest last, resume, races."""

import threading

import numpy as np
import orjson
import pyarrow as pa
import pytest

from kpdeliver.codecs import REJECTED_SCHEMA
from kpdeliver.config import QuarantineScope
from kpdeliver.findings import concat_findings, findings_for
from kpdeliver.model import Dataset, Images, Instances
from kpdeliver.release.catalog import rebuild_catalog
from kpdeliver.release.layout import read_manifest, release_prefix, sha256_hex
from kpdeliver.release.package import ReleasePlan
from kpdeliver.release.publish import find_duplicate, publish, published_versions, read_staged, staging_prefix
from kpdeliver.release.quarantine import hold_back
from kpdeliver.release.signoff import Counts, Verdict
from kpdeliver.release.stage import SourceChanged, stage_plan
from kpdeliver.schema import COCO17
from kpdeliver.storage import LocalStore

COUNTS = Counts(
    images_listed=1,
    images_delivered=1,
    images_quarantined=0,
    images_rejected_at_ingest=0,
    instances_in=1,
    instances_delivered=1,
    instances_quarantined=0,
    instances_review_only=0,
    splits={"train": 1},
    delivered_error_findings=0,
    findings=0,
)


def plan(tag: str) -> ReleasePlan:
    return ReleasePlan(
        files={"coco/train.json": f'{{"t": "{tag}"}}'.encode(), "qa/x.txt": b"x"},
        copies=[],
        counts=COUNTS,
        verdict=Verdict("pass"),
    )


def stage_and_publish(store, fp, tag="a"):
    prefix = staging_prefix("acme", "pose", fp)
    stage_plan(plan(tag), release=store, source=store, prefix=prefix)
    return publish(
        store=store, client="acme", dataset="pose", fingerprint=fp, staged_prefix=prefix, manifest_fields={}
    )


def test_versions_increase_and_manifest_lists_every_file(tmp_path):
    store = LocalStore(tmp_path)
    p1 = stage_and_publish(store, "f1" * 16)
    p2 = stage_and_publish(store, "f2" * 16, tag="b")
    assert (p1.version, p2.version) == (1, 2)
    m = read_manifest(store, release_prefix("acme", "pose", 2))
    assert set(m["files"]) == {"coco/train.json", "qa/x.txt"}
    assert m["files"]["coco/train.json"]["sha256"] == sha256_hex(b'{"t": "b"}')
    assert published_versions(store, "acme", "pose") == [1, 2]
    assert find_duplicate(store, "acme", "pose", "f1" * 16) == 1
    cat = rebuild_catalog(store, "acme")
    assert cat["version"].to_pylist() == [1, 2]


def test_a_killed_publication_is_invisible_and_resumes_into_the_same_version(tmp_path):
    store = LocalStore(tmp_path)
    fp = "ab" * 16
    prefix = staging_prefix("acme", "pose", fp)
    stage_plan(plan("a"), release=store, source=store, prefix=prefix)
    # simulate a run that claimed v0001 and copied one file, then died before the manifest
    store.put_if_absent("acme/pose/.claims/v0001", fp.encode())
    store.put("acme/pose/v0001/coco/train.json", b"partial")
    assert published_versions(store, "acme", "pose") == []
    done = publish(
        store=store, client="acme", dataset="pose", fingerprint=fp, staged_prefix=prefix, manifest_fields={}
    )
    assert done.version == 1 and done.resumed
    assert store.get("acme/pose/v0001/coco/train.json") == b'{"t": "a"}'


def test_a_foreign_claim_is_skipped(tmp_path):
    store = LocalStore(tmp_path)
    store.put_if_absent("acme/pose/.claims/v0001", b"someone-else")
    assert stage_and_publish(store, "cd" * 16).version == 2


def test_racing_publications_never_share_a_version(tmp_path):
    store = LocalStore(tmp_path)
    results, errors = [], []

    def run(i):
        try:
            results.append(stage_and_publish(store, f"{i:02d}" * 16, tag=str(i)).version)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert sorted(results) == [1, 2, 3, 4, 5, 6]
    for v in results:
        m = read_manifest(store, release_prefix("acme", "pose", v))
        tag = m["fingerprint"][:2]
        assert store.get(f"acme/pose/v{v:04d}/coco/train.json") == f'{{"t": "{int(tag)}"}}'.encode()


def test_published_manifest_is_never_overwritten(tmp_path):
    store = LocalStore(tmp_path)
    stage_and_publish(store, "ee" * 16)
    before = store.get("acme/pose/v0001/manifest.json")
    assert not store.put_if_absent("acme/pose/v0001/manifest.json", b"{}")
    assert store.get("acme/pose/v0001/manifest.json") == before


def _dataset(image_ids=(1, 1, 2)):
    kps = np.zeros((3, 17, 3))
    kps[:, :, :] = [10, 10, 2]
    n = max(image_ids)
    images = Images.build(
        id=list(range(1, n + 1)), file_name=[f"{c}.jpg" for c in "abc"[:n]], width=[100] * n, height=[100] * n
    )
    ins = Instances.build(id=[11, 12, 13], image_id=list(image_ids), keypoints=kps, annotator=["x", "x", "y"])
    return Dataset(COCO17, images, ins)


@pytest.mark.parametrize(
    "scope, delivered_ids, quarantined_images",
    [
        (
            QuarantineScope.instance,
            [13],
            1,
        ),  # label 12 goes with its image: 11, on the same image, is held back
        (QuarantineScope.image, [13], 1),
    ],
)
def test_quarantine_scope_and_accounting(scope, delivered_ids, quarantined_images):
    ds = _dataset()
    f = concat_findings(
        [
            findings_for("visibility.invalid_flag", message="bad", annotation_id=11, image_id=1, n=1),
            findings_for("bounds.keypoint_outside_bbox", message="meh", annotation_id=13, image_id=2, n=1),
        ]
    )
    rejected = pa.Table.from_pylist(
        [
            {
                "annotation_id": 99,
                "image_id": 5,
                "annotator": "y",
                "source": "f.json",
                "check": "schema.keypoint_count",
                "reason": "16 keypoints",
                "raw": "{}",
            }
        ],
        schema=REJECTED_SCHEMA,
    )
    delivered, q, img_q = hold_back(ds, f, rejected, scope)
    assert delivered.instances.id.tolist() == delivered_ids
    assert int(img_q.sum()) == quarantined_images
    assert len(delivered.instances) + q.num_rows == len(ds.instances) + rejected.num_rows
    row = q.to_pylist()[0]
    assert row["annotation_id"] == 11 and row["checks"] == "visibility.invalid_flag"
    assert orjson.loads(row["raw"])["keypoints"][:3] == [10, 10, 2]
    assert q.to_pylist()[-1]["raw"] == "{}"


def test_staging_refuses_an_image_whose_bytes_changed_after_ingest(tmp_path):
    store = LocalStore(tmp_path)
    store.put("batch/images/a.jpg", b"changed bytes")
    p = plan("a")
    p.copies.append(("batch/images/a.jpg", "yolo/images/train/a.jpg", sha256_hex(b"original bytes")))
    with pytest.raises(SourceChanged, match="changed after ingest"):
        stage_plan(p, release=store, source=store, prefix="stage")
    assert read_staged(store, "stage") is None


def test_package_counts_and_signoff_are_written_as_the_documented_json(tmp_path):
    from kpdeliver.config import ClientConfig
    from kpdeliver.release.package import finish_plan, package_release

    ds = _dataset((1, 2, 3))  # label 11 alone on its image: the image is held back with it
    f = concat_findings(
        [
            findings_for("visibility.invalid_flag", message="bad", annotation_id=11, image_id=1, n=1),
            findings_for("bounds.keypoint_outside_bbox", message="meh", annotation_id=13, image_id=2, n=1),
        ]
    )
    delivered, q, img_q = hold_back(
        ds, f, pa.Table.from_pylist([], schema=REJECTED_SCHEMA), QuarantineScope.instance
    )
    config = ClientConfig(client="acme", dataset="pose", source="s", releases="r", annotators=["x", "y"])
    p = package_release(
        config=config,
        dataset=ds,
        delivered=delivered,
        findings=f,
        quarantine=q,
        image_quarantined=img_q,
        ingest_rejected=pa.table(
            {"file_name": pa.array([], pa.string()), "status": pa.array([], pa.string())}
        ),
        assignments=pa.table({"image_id": [1, 2]}),
        annotators=pa.table({"annotator": ["x", "y"], "agreement_oks": [0.5, 0.7]}),
        instances_in=3,
    )
    finish_plan(p, "<html></html>")
    signoff = orjson.loads(p.files["qa/signoff.json"])
    assert list(signoff) == sorted(signoff) and len(signoff.pop("content_sha256")) == 64
    assert signoff.pop("thresholds") == config.qa.model_dump(mode="json")
    rules = signoff.pop("rules")
    assert signoff == {
        "findings_by_check": {
            "bounds.keypoint_outside_bbox": {"error": 0, "info": 0, "warning": 1},
            "visibility.invalid_flag": {"error": 1, "info": 0, "warning": 0},
        },
        "reasons": [
            "33.3% of instances quarantined (max 10.0%)",
            "mean agreement OKS 0.600 below 0.75",
            "annotator x: agreement OKS with the others 0.500, below 0.75 — their 1 instance delivered "
            "(annotator x in index/annotations.parquet), their findings in qa/findings.parquet",
            "annotator y: agreement OKS with the others 0.700, below 0.75 — their 1 instance delivered "
            "(annotator y in index/annotations.parquet), their findings in qa/findings.parquet",
        ],
        "verdict": "fail",
    }
    assert [(r["rule"], r["subject"], r["threshold"], r["measured"], r["outcome"]) for r in rules[:4]] == [
        ("max_error_findings", None, 0, 0, "pass"),
        ("max_quarantined_fraction", None, 0.1, 0.333333, "fail"),
        ("min_mean_oks", None, 0.75, 0.6, "fail"),
        ("min_agreement_oks", "x", 0.75, 0.5, "conditional"),
    ]
    store = LocalStore(tmp_path)
    prefix = staging_prefix("acme", "pose", "ab" * 16)
    p.copies.clear()  # the test images have no bytes to copy
    stage_plan(p, release=store, source=store, prefix=prefix)
    publish(
        store=store,
        client="acme",
        dataset="pose",
        fingerprint="ab" * 16,
        staged_prefix=prefix,
        manifest_fields={},
    )
    m = read_manifest(store, release_prefix("acme", "pose", 1))
    assert (m["verdict"], m["qa"]["reasons"]) == ("fail", signoff["reasons"])
    assert m["counts"] == {
        "delivered_error_findings": 0,
        "findings": 2,
        "images_delivered": 2,
        "images_listed": 3,
        "images_quarantined": 1,
        "images_rejected_at_ingest": 0,
        "instances_delivered": 2,
        "instances_in": 3,
        "instances_quarantined": 1,
        "instances_review_only": 0,
        "splits": {"train": 1, "val": 1},
    }
    assert list(m["counts"]) == sorted(m["counts"])
