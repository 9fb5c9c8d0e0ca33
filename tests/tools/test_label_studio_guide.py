"""`kpdeliver push` puts the labeling guide into each annotator's Label Studio project as its
instructions, shown before labeling, and the guide survives Label Studio's HTML sanitising: the
keypoint definitions, the visibility flags and the schema version are there to read."""

from __future__ import annotations

import httpx
import pytest
import yaml
from markupsafe import escape
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.schema import COCO17, schema_version
from kpdeliver.synth import make_demo_batch

pytestmark = pytest.mark.slow
TOKEN_ENV = "KPDELIVER_TEST_LS_GUIDE_TOKEN"


def test_push_sets_the_guide_as_every_project_s_instructions(label_studio, monkeypatch):
    root = label_studio.document_root / "guide-client"
    make_demo_batch(root, seed=6, n_images=4, annotators=("ann_a", "ann_b"), overlap=0.0, n_gold=1)
    cfg = yaml.safe_load((root / "client.yaml").read_text())
    cfg["client"] = "guided"
    cfg["tool"] = {
        "kind": "label-studio",
        "url": label_studio.url,
        "token_env": TOKEN_ENV,
        "document_root": str(label_studio.document_root),
        "users": {"ga@example.com": "ann_a", "gb@example.com": "ann_b"},
    }
    (root / "client.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    monkeypatch.setenv(TOKEN_ENV, label_studio.token)
    run = CliRunner().invoke(app, ["push", "--config", str(root / "client.yaml")])
    assert run.exit_code == 0, run.output
    with httpx.Client(
        base_url=label_studio.url, headers={"Authorization": f"Token {label_studio.token}"}
    ) as http:
        projects = [
            p
            for p in http.get("/api/projects/", params={"page_size": 100}).json()["results"]
            if p["title"].startswith("guided/")
        ]
        assert len(projects) == 2
        for p in projects:
            got = http.get(f"/api/projects/{p['id']}/").json()
            assert got["show_instruction"] is True
            text = got["expert_instruction"]
            assert schema_version(COCO17) in text and 'class="kpg"' in text
            for definition in COCO17.definitions.values():
                assert str(escape(definition)) in text or definition in text
            assert "labeled, not visible" in text and "<script" not in text
