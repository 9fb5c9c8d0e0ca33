"""Sigmas measured from a batch's gold and overlap pairs recover the per-keypoint placement spread
injected into a simulated team, within their confidence interval; `kpdeliver schema --sigmas-from`
turns a release's measured sigmas into a schema file that OKS then says it uses."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import yaml
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.qa import run_deep_qa
from kpdeliver.qa.sigmas import MIN_PAIRS, measure_sigmas, sigmas_files
from kpdeliver.schema import COCO17, get_schema, sigmas_origin
from kpdeliver.synth import ErrorRates, simulate_team, synthetic_dataset

# the injected spread: COCO's sigmas, each scaled by a seeded factor in 0.6..1.6
INJECTED = np.round(COCO17.sigma_array * np.random.default_rng(11).uniform(0.6, 1.6, 17), 3)


@pytest.fixture(scope="module")
def measured():
    """A team of three placing each keypoint with the injected spread (noise=1: sigma_k itself), half
    of the images labeled twice and a tenth gold."""
    truth = synthetic_dataset(400, 700, seed=3)
    team = simulate_team(truth, overlap=0.5, gold=0.1, noise=1.0, seed=5, sigmas=INJECTED)
    return run_deep_qa(team.dataset, gold=team.gold).sigmas


def test_measured_sigmas_recover_the_injected_ones(measured):
    rows = measured.table.to_pylist()
    print("\nkeypoint        injected  measured  95% interval         pairs (gold + overlap)")
    for sigma, r in zip(INJECTED, rows, strict=True):
        print(
            f"{r['keypoint']:15s} {sigma:8.3f}  {r['sigma']:8.4f}  [{r['low']:.4f}, {r['high']:.4f}]  "
            f"{r['n_pairs']:5.0f} ({r['n_gold']} + {r['n_overlap']:.0f})"
        )
    inside = [r["low"] <= s <= r["high"] for s, r in zip(INJECTED, rows, strict=True)]
    # a 95 % interval misses now and then: of 17, at most 2 may (P(3 or more misses) is 5 %)
    assert sum(inside) >= 15, [r["keypoint"] for r, ok in zip(rows, inside, strict=True) if not ok]
    rel = np.array([r["sigma"] for r in rows]) / INJECTED - 1
    assert np.abs(rel).max() < 0.1, rel
    assert all(r["n_pairs"] > 300 and r["n_gold"] > 100 and r["n_overlap"] > 200 for r in rows)
    assert measured.oks_sigmas_source == "COCO default"


def test_gold_pairs_and_overlap_pairs_measure_the_same_spread():
    """Gold pairs hold one placement, overlap pairs two: each alone finds the injected spread."""
    truth = synthetic_dataset(300, 500, seed=8)
    spread = np.full(17, 0.06)
    only_overlap = simulate_team(truth, overlap=0.6, gold=0.0, noise=1.0, seed=1, sigmas=spread)
    only_gold = simulate_team(truth, overlap=0.0, gold=0.3, noise=1.0, seed=2, sigmas=spread)
    a = run_deep_qa(only_overlap.dataset).sigmas.table
    b = run_deep_qa(only_gold.dataset, gold=only_gold.gold).sigmas.table
    assert sum(a["n_gold"].to_pylist()) == 0
    # every instance of a gold image is measured against gold (overlap: the few gold could not match)
    assert sum(b["n_overlap"].to_pylist()) < 0.02 * sum(b["n_pairs"].to_pylist())
    for t in (a, b):
        s = np.array(t["sigma"].to_pylist())
        assert np.abs(s / 0.06 - 1).max() < 0.12, s


def test_gross_mistakes_do_not_pass_for_spread():
    """Swaps are left out by QA, points moved far away (a jump of 20-40 % of the body) by the cut."""
    truth = synthetic_dataset(300, 500, seed=4)
    spread = np.full(17, 0.05)
    rates = {a: ErrorRates(swap=0.05, to_occluded=0.05) for a in ("ann_a", "ann_b", "ann_c")}
    team = simulate_team(truth, overlap=0.5, gold=0.1, noise=1.0, seed=6, sigmas=spread, rates=rates)
    kps = team.dataset.instances.keypoints
    rng = np.random.default_rng(0)
    far = rng.choice(len(kps), len(kps) // 50, replace=False)
    kps[far, 9, :2] += (
        0.3 * np.sqrt(team.dataset.instances.area[far])[:, None]
    )  # a wrist put on the wrong spot
    t = run_deep_qa(team.dataset, gold=team.gold).sigmas.table
    s = np.array(t["sigma"].to_pylist())
    assert np.abs(s / 0.05 - 1).max() < 0.12, s
    assert t["n_dropped"].to_pylist()[9] > 0


def test_too_few_pairs_state_no_sigma():
    got = measure_sigmas([], 3, COCO17)
    assert got.table.num_rows == 17 and got.table["sigma"].null_count == 17
    assert all(n < MIN_PAIRS for n in got.table["n_pairs"].to_pylist())


def test_schema_adopts_measured_sigmas_and_oks_says_so(measured, tmp_path):
    release = tmp_path / "acme" / "pose" / "v0003"
    (release / "qa").mkdir(parents=True)
    for path, data in sigmas_files(measured).items():
        (release / path).write_bytes(data)
    manifest = {"client": "acme", "dataset": "pose", "version": 3, "schema": COCO17.to_dict(), "files": {}}
    (release / "manifest.json").write_bytes(orjson.dumps(manifest))
    out = tmp_path / "measured.yaml"
    run = CliRunner().invoke(app, ["schema", "--sigmas-from", str(release), "--out", str(out)])
    assert run.exit_code == 0, run.output
    doc = yaml.safe_load(out.read_text())
    assert doc["sigmas_source"] == "measured v0003"
    schema = get_schema(str(out))
    want = [round(r["sigma"], 4) for r in measured.table.to_pylist()]
    assert list(schema.sigmas) == want and schema.keypoints == COCO17.keypoints
    assert schema.skeleton == COCO17.skeleton and schema.flip_pairs == COCO17.flip_pairs
    assert schema.definitions == COCO17.definitions
    assert sigmas_origin(schema) == "measured v0003"
    assert measure_sigmas([], 3, schema).oks_sigmas_source == "measured v0003"


def test_schema_refuses_a_release_without_measured_sigmas(tmp_path):
    (tmp_path / "manifest.json").write_bytes(
        orjson.dumps({"version": 1, "schema": COCO17.to_dict(), "files": {}})
    )
    run = CliRunner().invoke(app, ["schema", "--sigmas-from", str(tmp_path)])
    assert run.exit_code == 2 and "no qa/sigmas.json" in run.output
