"""The demo release's QA report in a real browser: Debian's chromium, headless and cut off from the
network, renders it to a screenshot that is not blank; every overlay decodes as an image; the page
asks for nothing from the network. `make test-deps` installs chromium (infra/ci/install-chromium.sh);
without it the browser tests fail (the `chromium` fixture of tests/conftest.py), they never skip."""

from __future__ import annotations

import base64
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kpdeliver.report.guide import CHROMIUM_FLAGS

pytestmark = pytest.mark.slow
OFFLINE = CHROMIUM_FLAGS  # the guide's print flags: headless and cut off from the network
REMOTE = re.compile(
    r"""(?:src|href|action|poster)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import""",
    re.I,
)


def render(chromium: Path, tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(chromium), *OFFLINE, f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )


@pytest.fixture(scope="module")
def page(demo_release, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("page") / "report.html"
    path.write_text(demo_release.html)
    return path


def test_the_page_asks_nothing_from_the_network(demo_release):
    html = demo_release.html
    assert not REMOTE.search(html), REMOTE.search(html)
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@font-face" not in html


def test_every_overlay_decodes_as_an_image(demo_release):
    uris = re.findall(
        r'<img class="overlay" alt="[^"]*" src="data:image/jpeg;base64,([^"]+)"', demo_release.html
    )
    assert len(uris) >= 8  # worst findings (some side by side with gold) and the random sample
    for uri in uris:
        im = Image.open(io.BytesIO(base64.b64decode(uri)))
        im.load()
        assert im.format == "JPEG" and min(im.size) >= 80 and max(im.size) == 520  # twice the first 260
    assert demo_release.html.count('class="pic pair"') >= 1  # an annotator next to the reference


def test_chromium_renders_a_screenshot_that_is_not_blank(chromium, page, tmp_path):
    shot = tmp_path / "report.png"
    run = render(chromium, tmp_path, page, f"--screenshot={shot}", "--window-size=1400,2400")
    assert shot.is_file(), run.stderr.decode(errors="replace")[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2400, 1400)
    assert pixels.std() > 20  # text, cards and pictures, not a white page
    rows = (pixels < 250).mean(axis=1)  # content goes down the page, not only its top
    assert (rows[1200:] > 0.01).sum() > 200


def test_chromium_loads_the_whole_page_offline(chromium, page, tmp_path, demo_release):
    run = render(chromium, tmp_path, page, "--dump-dom")
    dom = run.stdout.decode(errors="replace")
    assert "</body>" in dom, run.stderr.decode(errors="replace")[-2000:]
    for section in (
        'id="verdict"',
        'id="annotators"',
        'id="worst"',
        'id="sample"',
        'id="keypoints"',
        'id="coverage"',
        'id="changes"',
        'id="row-rules"',
    ):
        assert section in dom, section
    assert dom.count("<img") == demo_release.html.count("<img")
