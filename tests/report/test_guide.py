"""The labeling guide: generated from the schema (every definition, left/right, the three visibility
flags), versioned with it, with numbered reference pictures from gold or the first release; its
embedded form for an annotation tool styles nothing outside itself; headless chromium renders it
offline and prints it to PDF (`kpdeliver guide --pdf` on the demo batch)."""

from __future__ import annotations

import base64
import io
import re
import subprocess

import numpy as np
import orjson
import pytest
from markupsafe import escape
from PIL import Image
from typer.testing import CliRunner

from kpdeliver.cli import app
from kpdeliver.codecs.coco import encode
from kpdeliver.report.guide import (
    draw_reference,
    guide_file_name,
    pick_references,
    render_guide,
    tool_instructions,
)
from kpdeliver.report.guide_refs import release_references
from kpdeliver.schema import COCO17, SchemaError, schema_from_dict, schema_version
from kpdeliver.storage import LocalStore
from kpdeliver.synth import make_demo_batch, synthetic_dataset

REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(|@import""", re.I)
URIS = re.compile(r'src="data:image/jpeg;base64,([^"]+)"')


def _page(references=()) -> str:
    return render_guide(
        COCO17,
        client="acme",
        dataset="pose",
        references=list(references),
        references_from="the batch's gold labels",
    )


def test_the_guide_says_what_every_keypoint_is_and_how_to_flag_it():
    html = _page()
    version = schema_version(COCO17)
    assert f"coco17 {version}" in html and f'content="{version}"' in html
    for name, definition in COCO17.definitions.items():
        assert name in html and str(escape(definition)) in html
    assert len(COCO17.definitions) == 17
    assert "the person's own, never the image's" in " ".join(html.split())
    for flag, meaning in (("2", "labeled and visible"), ("1", "labeled, not visible"), ("0", "not labeled")):
        assert f'<span class="flag">{flag}</span></td><td>{meaning}</td>' in html
    assert "left_shoulder ↔ right_shoulder" in html
    assert not REMOTE.search(html) and "<script" not in html


def test_the_version_follows_the_schema():
    doc = {**COCO17.to_dict(), "definitions": dict(COCO17.definitions)}
    same = schema_from_dict(doc)
    assert schema_version(same) == schema_version(COCO17)
    moved = schema_from_dict({**doc, "definitions": {**doc["definitions"], "nose": "Tip of the nose."}})
    wider = schema_from_dict({**doc, "sigmas": [0.05] * 17})
    assert len({schema_version(COCO17), schema_version(moved), schema_version(wider)}) == 3
    assert (
        guide_file_name(COCO17, "acme", "pose") == f"labeling-guide-acme-pose-coco17-{schema_version(COCO17)}"
    )


def test_a_schema_file_gives_definitions_and_the_guide_names_those_missing():
    schema = schema_from_dict(
        {
            "name": "paw",
            "keypoints": ["left_paw", "right_paw", "tail"],
            "definitions": {"tail": "Tip of the tail."},
        }
    )
    html = render_guide(schema, client="zoo", dataset="cats", references=[], references_from="")
    assert "Tip of the tail." in html and "no definition for 2 keypoint(s)" in html
    with pytest.raises(SchemaError, match="definitions for unknown keypoints"):
        schema_from_dict({"keypoints": ["a", "b"], "definitions": {"c": "?"}})


def test_reference_pictures_are_numbered_overlays():
    ds = synthetic_dataset(6, 10, seed=2)
    rows = pick_references(ds)
    assert 1 <= len(rows) <= 4 and len(set(ds.instances.image_id[rows].tolist())) == len(rows)
    refs = [draw_reference(ds, int(r), None) for r in rows]
    html = _page(refs)
    uris = URIS.findall(html)
    assert len(uris) == len(rows)
    im = np.asarray(Image.open(io.BytesIO(base64.b64decode(uris[0]))).convert("RGB")).astype(int)
    assert max(im.shape[:2]) >= 500  # twice the report's thumbnails
    yellow = (im[..., 0] > 180) & (im[..., 1] > 180) & (im[..., 2] < 120)  # the numbers
    assert yellow.sum() > 200


def test_references_from_the_first_release(tmp_path):
    ds = synthetic_dataset(3, 4, seed=5)
    release = tmp_path / "acme" / "pose" / "v0001"
    (release / "coco").mkdir(parents=True)
    (release / "coco" / "train.json").write_bytes(encode(ds))
    (release / "manifest.json").write_bytes(orjson.dumps({"version": 1, "files": {}}))
    for name, w, h in zip(ds.images.file_name, ds.images.width, ds.images.height, strict=True):
        path = release / "yolo" / "images" / "train" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (int(w), int(h)), (250, 20, 20)).save(path, format="JPEG")
    refs = release_references(LocalStore(tmp_path), "acme", "pose", COCO17)
    assert 1 <= len(refs) <= 4
    im = np.asarray(Image.open(io.BytesIO(base64.b64decode(refs[0].uri.split(",", 1)[1]))).convert("RGB"))
    assert (im[..., 0].astype(int) - im[..., 1] > 150).mean() > 0.3  # drawn on the release's own image copy
    assert release_references(LocalStore(tmp_path), "acme", "other", COCO17) == []


def test_the_tool_instructions_style_nothing_outside_themselves():
    html = tool_instructions(COCO17, client="acme", dataset="pose")
    assert "<html" not in html and "<body" not in html and "data:" not in html
    css = html[html.index("<style>") + 7 : html.index("</style>")]
    selectors = [
        s.strip()
        for rule in re.findall(r"([^{}]+)\{[^{}]*\}", css.replace("@media print{", ""))
        for s in rule.split(",")
    ]
    assert selectors and all(s.startswith(".kpg") for s in selectors), selectors
    assert f"{guide_file_name(COCO17, 'acme', 'pose')}.html" in html
    assert str(escape(COCO17.definitions["left_hip"])) in html


@pytest.mark.slow
def test_guide_command_writes_a_page_chromium_renders_offline_and_a_pdf(chromium, tmp_path):
    root = tmp_path / "demo"
    config = make_demo_batch(root, seed=4, n_images=8, n_gold=2)
    out = tmp_path / "guide"
    run = CliRunner().invoke(
        app, ["guide", "--config", str(config), "--out", str(out), "--pdf", "--chromium", str(chromium)]
    )
    assert run.exit_code == 0, run.output
    stem = guide_file_name(COCO17, "demo", "people-demo")
    page, pdf = out / f"{stem}.html", out / f"{stem}.pdf"
    assert "from the batch's gold labels" in run.output
    html = page.read_text()
    assert len(URIS.findall(html)) == 2 and not REMOTE.search(html)
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 20_000
    assert not list(out.glob(".*profile*"))  # the browser's profile is cleaned up
    offline = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
        f"--user-data-dir={tmp_path / 'p'}",
    ]
    dom = subprocess.run(
        [str(chromium), *offline, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )
    assert dom.returncode == 0 and "left_ankle" in dom.stdout and schema_version(COCO17) in dom.stdout
    shot = tmp_path / "guide.png"
    subprocess.run(
        [str(chromium), *offline, f"--screenshot={shot}", "--window-size=1000,2400", page.as_uri()],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
        check=True,
    )
    im = np.asarray(Image.open(shot).convert("L")).astype(float)
    assert im.std() > 20  # text, tables and pictures, not a blank page
