"""The Label Studio client against a hostile server: a tiny HTTP server on loopback (the
attacker's server, so a fake is right) answers with echoed tokens, terminal escapes, rich markup,
NaN in an export and ids that are paths. `kpdeliver pull` runs as a subprocess, as a person runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from kpdeliver.collect.files import read_annotations
from kpdeliver.collect.non_finite import hold_non_finite
from kpdeliver.schema import COCO17
from kpdeliver.synth import make_demo_batch
from kpdeliver.tools.label_studio import LabelStudioClient, ToolError
from kpdeliver.tools.label_studio.untrusted import shown

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "0123456789abcdefSECRETtoken"
TITLE = "demo/people-demo — ann_a"
HOSTILE_BODY = (
    "Internal Server Error\r\nrequest headers:\r\nAuthorization: Token " + TOKEN + "\r\n"
    "\x1b[2J\x1b[H\x1b]0;owned window title\x07\x1b]8;;http://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
    "\u202egnp.exe [/] [bold red]not markup[/bold red] \x9b31m" + "A" * 5000
)


class FakeLabelStudio:
    """Answers `routes[(method, path)] = (status, content type, body)`; records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[int, str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append((self.command, self.path))
                status, kind, body = fake.routes.get(
                    (self.command, self.path.split("?")[0]),
                    (404, "application/json", b'{"detail": "not found"}'),
                )
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def json(self, method: str, path: str, doc, status: int = 200) -> None:
        self.routes[(method, path)] = (status, "application/json", json.dumps(doc).encode())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    server = FakeLabelStudio()
    yield server
    server.close()


@pytest.fixture
def config(tmp_path, fake) -> Path:
    path = make_demo_batch(tmp_path, seed=2, n_images=4)
    doc = yaml.safe_load(path.read_text())
    doc["tool"] = {"url": fake.url, "token_env": "KP_HOSTILE_TOKEN", "users": {"ada@example.org": "ann_a"}}
    path.write_text(yaml.safe_dump(doc))
    return path


def pull(config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "KP_HOSTILE_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", "from kpdeliver.cli import main; main()", "pull", "-c", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_an_error_body_is_shown_clean_cut_and_without_the_token(fake, config):
    fake.routes[("GET", "/api/projects/")] = (500, "text/plain", HOSTILE_BODY.encode())
    out = pull(config)
    said = out.stdout + out.stderr
    assert out.returncode == 2, said
    assert "Traceback" not in said and "MarkupError" not in said
    assert TOKEN not in said and "Authorization: Token [redacted]" in out.stderr
    assert not any(c in said for c in "\x1b\x07\x9b\u202e\r"), repr(said)
    assert "[/] [bold red]not markup[/bold red]" in out.stderr  # shown as written, never read as markup
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Label Studio GET /api/projects/: HTTP 500")
    assert len(lines[0]) < 500


def test_a_project_id_that_is_a_path_never_reaches_a_url(fake, config):
    fake.json(
        "GET", "/api/projects/", {"results": [{"id": "1/../../../admin/evil", "title": TITLE}], "next": None}
    )
    out = pull(config)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "not a positive whole number" in out.stderr
    assert [path for _, path in fake.requests if not path.startswith("/api/projects/?")] == []


@pytest.mark.parametrize("bad", ["../admin", -3, 0, True, 1.5, "7"])
def test_ids_are_checked_before_they_go_into_a_url(fake, bad):
    client = LabelStudioClient(fake.url, TOKEN)
    for call in (
        lambda: client.update_task_data(bad, {}),
        lambda: client.update_project(bad, title="x"),
        lambda: client.import_tasks(bad, [{"data": {}}]),
        lambda: client.export_snapshot(bad),
        lambda: client.create_annotation(bad, []),
        lambda: client.task_url(1, bad),
    ):
        with pytest.raises(ToolError, match="not a positive whole number"):
            call()
    assert fake.requests == []


def test_an_export_id_from_the_server_is_checked_too(fake):
    fake.json("POST", "/api/projects/4/exports/", {"id": "5/../../../../users", "status": "completed"})
    with pytest.raises(ToolError, match="export id"):
        LabelStudioClient(fake.url, TOKEN).export_snapshot(4)
    assert [m for m, _ in fake.requests] == ["POST"]


def _export_with_nan() -> str:
    box = {
        "id": "b1",
        "type": "rectanglelabels",
        "original_width": 640,
        "original_height": 480,
        "value": {"x": 10, "y": 10, "width": 50, "height": 60, "rectanglelabels": ["person"]},
    }
    points = [
        {
            "id": f"p{i}",
            "type": "keypointlabels",
            "parentID": "b1",
            "original_width": 640,
            "original_height": 480,
            "value": {"x": 20 + i, "y": 30, "keypointlabels": [name]},
        }
        for i, name in enumerate(COCO17.keypoints[:3])
    ]
    points[0]["value"]["x"] = float("nan")
    points[1]["value"]["y"] = float("inf")
    task = {
        "id": 11,
        "data": {"file_name": "scene_000.jpg", "image": "/data/upload/1/scene_000.jpg"},
        "annotations": [{"id": 3, "completed_by": {"email": "ada@example.org"}, "result": [box, *points]}],
    }
    return json.dumps([task])  # NaN and Infinity literals, as a server built on Python's json writes them


def test_nan_and_infinity_in_an_export_are_pulled_and_become_findings(fake, config):
    fake.json(
        "GET", "/api/projects/", {"results": [{"id": 4, "title": TITLE, "label_config": ""}], "next": None}
    )
    fake.json("POST", "/api/projects/4/exports/", {"id": 9, "status": "completed"})
    fake.routes[("GET", "/api/projects/4/exports/9/download")] = (
        200,
        "application/json",
        _export_with_nan().encode(),
    )
    out = pull(config)
    assert out.returncode == 0, out.stdout + out.stderr
    written = config.parent / "batch" / "annotations" / "ann_a" / "label-studio-4.json"
    assert "NaN" in written.read_text() and "Infinity" in written.read_text()
    decoded = hold_non_finite(read_annotations(written, schema=COCO17))
    checks = decoded.findings["check"].to_pylist()
    assert "schema.non_finite" in checks, decoded.findings.to_pylist()


def test_shown_text_keeps_words_and_loses_everything_else():
    text = shown(HOSTILE_BODY + " token=" + "abc123", secret=TOKEN)
    assert TOKEN not in text and "abc123" not in text
    assert "owned window title" not in text and "http://evil.example" not in text and "click me" in text
    assert all(c.isprintable() for c in text) and len(text) <= 300
