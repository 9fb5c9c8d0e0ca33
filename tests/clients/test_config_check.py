"""Configs fail early and completely: each mistake an operator makes gives every problem of the config
in one message, from a fresh process through the real entry point, before Prefect starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kpdeliver.clients.check import check_config
from kpdeliver.clients.isolation import NeighbourConfigWarning, configs_beside
from kpdeliver.config import ConfigError, config_from_dict

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
client: acme
dataset: pose-2026
schema: coco17
source: ./batch
releases: ./releases
annotators: [ann_a, ann_b]
assignment: {gold: [img_0002.jpg]}
"""


def kpdeliver(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from kpdeliver.cli import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "80"},
    )


@pytest.fixture
def clients(tmp_path: Path) -> Path:
    (tmp_path / "batch" / "images").mkdir(parents=True)
    (tmp_path / "batch" / "images" / "img_0002.jpg").write_bytes(b"not decoded by the check")
    (tmp_path / "acme.yaml").write_text(GOOD)
    return tmp_path


def assert_refused(out: subprocess.CompletedProcess, *fragments: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "more problems" not in out.stderr
    for fragment in fragments:
        assert fragment in out.stderr, (fragment, out.stderr)


MISTAKES = {
    "schema typo": (
        "schema: coco17",
        "schema: coco-17",
        ["unknown schema 'coco-17'", "coco17, face68, face98, hand21"],
    ),
    "gold naming no image": (
        "gold: [img_0002.jpg]",
        'gold: [img_0001.jpg, img_0002.jpg, "x [1].jpg"]',
        ["field 'assignment.gold': 2 names match no image", "img_0001.jpg", "x [1].jpg"],
    ),
    "annotators missing": (
        "annotators: [ann_a, ann_b]\n",
        "",
        ["field 'annotators' is required but missing"],
    ),
    "annotators repeated": ("[ann_a, ann_b]", "[ann_a, ann_b, ann_a]", ["listed more than once: ann_a"]),
    "thresholds out of range": (
        "releases: ./releases",
        "releases: ./releases\nqa: {min_mean_oks: 1.5, max_quarantined_fraction: -0.1}",
        ["2 problems", "'qa.min_mean_oks'", "1.5", "'qa.max_quarantined_fraction'"],
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_is_refused_with_every_problem_and_no_traceback(clients, mistake):
    old, new, fragments = MISTAKES[mistake]
    (clients / "acme.yaml").write_text(GOOD.replace(old, new))
    assert_refused(kpdeliver("check", "acme.yaml", cwd=clients), *fragments)


def test_deliver_refuses_before_prefect_with_all_problems(clients):
    (clients / "acme.yaml").write_text(
        GOOD.replace("coco17", "coco-17").replace("img_0002", "img_0009")
        + "qa: {max_error_findings: -1}\ncolour: blue\n"
    )
    out = kpdeliver("deliver", "--config", "acme.yaml", "--work", str(clients / "work"), cwd=clients)
    assert_refused(out, "4 problems", "coco-17", "img_0009.jpg", "qa.max_error_findings", "'colour'")
    assert not (clients / "work" / ".prefect").exists()  # refused before Prefect was configured


def test_good_config_checks_clean_and_a_broken_neighbour_is_a_warning(clients):
    (clients / "globex.yaml").write_text(
        "client: globex\ndataset: [broken\n"
    )  # not YAML: not a config at all
    (clients / "initech.yaml").write_text("client: initech\nschema: nope\n")
    out = kpdeliver("check", "acme.yaml", cwd=clients)
    assert out.returncode == 0, out.stderr
    assert "usable" in out.stdout
    assert "warning:" in out.stderr and "initech.yaml" in out.stderr and "Traceback" not in out.stderr
    assert "acme.yaml" not in out.stderr


def test_a_broken_neighbour_is_left_out_with_a_warning_naming_it(clients):
    (clients / "initech.yaml").write_text("client: initech\n")
    with pytest.warns(NeighbourConfigWarning, match="initech.yaml"):
        assert configs_beside(clients / "acme.yaml") == []


def test_overlapping_neighbours_are_all_listed(clients):
    (clients / "globex.yaml").write_text(GOOD.replace("acme", "globex"))  # the same source
    (clients / "acme.yaml").write_text(GOOD.replace("img_0002", "img_0009"))
    check = check_config(clients / "acme.yaml")
    assert "globex" in check.problems[0] and "img_0009.jpg" in check.problems[1]
    with pytest.raises(ConfigError) as e:
        check.config_or_raise()
    assert str(e.value).startswith("refusing to run: ") and "2 problems" in str(e.value)


def test_missing_source_and_schema_file_are_problems(tmp_path):
    (tmp_path / "acme.yaml").write_text(GOOD.replace("coco17", "./custom.yaml"))
    check = check_config(tmp_path / "acme.yaml")
    assert [p.split(":")[0] for p in check.problems] == ["field 'schema'", "field 'source'"]


def test_schedule_section_is_typed():
    base = {"client": "a", "dataset": "d", "source": "s", "releases": "r", "annotators": ["x"]}
    assert config_from_dict({**base, "schedule": {"cron": "0 6 * * 1"}}).schedule.timezone == "UTC"
    with pytest.raises(ConfigError) as e:
        config_from_dict({**base, "schedule": {"cron": "every monday", "timezone": "Mars/Olympus"}})
    assert "five fields" in str(e.value) and "Mars/Olympus" in str(e.value)
