"""Configs and schema files are bounded inputs: only regular files are opened (a named pipe beside
a config, as a config or as its schema is refused, never waited on), each has a size cap checked
before it is read (a 50 MB config is refused unparsed, and a neighbour's check does not parse it
either), a schema path never follows a link out of the config's folder, and annotator names are
safe folder names. Each refusal is one sentence, exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from kpdeliver.bounded import CONFIG_MAX_BYTES
from kpdeliver.clients.check import check_config
from tests.config.clients import GOOD, assert_refused, assert_usable, kpdeliver, make_clients

SCHEMA = "name: tri\nkeypoints: [a, b, c]\nskeleton: [[0, 1], [1, 2]]\n"
HUGE = 50 * 1024 * 1024


@pytest.fixture
def clients(tmp_path: Path) -> Path:
    return make_clients(tmp_path)


def huge_config(path: Path, client: str) -> None:
    """A config of 50 MB: a valid one with a long list of annotators."""
    line = "  - ann_" + "x" * 40 + "\n"
    with path.open("w") as f:
        f.write(GOOD.replace("acme", client).replace("annotators: [ann_a, ann_b]", "annotators:"))
        f.write(line * (HUGE // len(line)))


def test_a_50_mb_config_is_refused_unread_in_one_sentence(clients):
    huge_config(clients / "acme.yaml", "acme")
    assert_refused(kpdeliver("check", "acme.yaml", cwd=clients), "acme.yaml", "50.0 MiB", "1.0 MiB")


def test_a_50_mb_neighbour_is_never_parsed_by_a_clients_check(clients, monkeypatch):
    huge_config(clients / "globex.yaml", "globex")
    parsed = []
    real = yaml.safe_load
    monkeypatch.setattr(yaml, "safe_load", lambda text: parsed.append(len(text)) or real(text))
    check = check_config(clients / "acme.yaml")
    assert check.problems == [] and check.config is not None
    assert parsed and max(parsed) <= CONFIG_MAX_BYTES, parsed
    assert any("globex.yaml" in w and "50.0 MiB" in w for w in check.warnings), check.warnings


def test_a_named_pipe_beside_the_config_is_left_out_with_a_warning(clients):
    os.mkfifo(clients / "pipe.yaml")
    out = kpdeliver("check", "acme.yaml", cwd=clients, timeout=60)  # it waited forever for a writer
    assert_usable(out)
    assert "pipe.yaml" in out.stderr and "named pipe" in out.stderr, out.stderr


@pytest.mark.parametrize("name", ["pipe.yaml", "pipe.xml"])
def test_a_named_pipe_as_the_schema_is_refused_naming_it(clients, name):
    os.mkfifo(clients / name)
    (clients / "acme.yaml").write_text(GOOD.replace("coco17", name))
    assert_refused(kpdeliver("check", "acme.yaml", cwd=clients, timeout=60), name, "named pipe")


@pytest.mark.parametrize("kind", ["named pipe", "folder", "character device"])
def test_a_config_that_is_no_regular_file_is_refused_naming_it(clients, kind):
    path = (
        "/dev/null" if kind == "character device" else "odd.yaml"
    )  # /dev/null: read, it was an empty config
    if kind != "character device":
        os.mkfifo(clients / path) if kind == "named pipe" else (clients / path).mkdir()
    assert_refused(kpdeliver("check", path, cwd=clients, timeout=60), path, kind)


@pytest.mark.parametrize("target", ["/etc/passwd", "outside/schema.yaml"])
def test_a_schema_linking_out_of_the_config_folder_is_refused_naming_it(tmp_path, target):
    clients = make_clients(tmp_path / "clients")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "schema.yaml").write_text(SCHEMA)  # a usable schema: still not followed
    real = target if target.startswith("/") else str(tmp_path / target)
    (clients / "schema.yaml").symlink_to(real)
    (clients / "acme.yaml").write_text(GOOD.replace("coco17", "schema.yaml"))
    assert_refused(kpdeliver("check", "acme.yaml", cwd=clients), "field 'schema'", "schema.yaml", real)


def test_a_schema_linking_out_through_a_folder_link_is_refused(tmp_path):
    clients = make_clients(tmp_path / "clients")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "schema.yaml").write_text(SCHEMA)
    (clients / "shared").symlink_to(tmp_path / "outside")
    (clients / "acme.yaml").write_text(GOOD.replace("coco17", "shared/schema.yaml"))
    assert_refused(kpdeliver("check", "acme.yaml", cwd=clients), "field 'schema'", "shared/schema.yaml")


def test_a_schema_link_inside_the_config_folder_is_read(clients):
    (clients / "schemas").mkdir()
    (clients / "schemas" / "tri.yaml").write_text(SCHEMA)
    (clients / "schema.yaml").symlink_to("schemas/tri.yaml")
    (clients / "acme.yaml").write_text(GOOD.replace("coco17", "schema.yaml"))
    assert_usable(kpdeliver("check", "acme.yaml", cwd=clients))


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", ".hidden", "ann b", "", "x" * 129])
def test_an_annotator_name_that_is_no_safe_folder_name_is_refused_by_check_and_assign(clients, name):
    (clients / "acme.yaml").write_text(GOOD.replace("[ann_a, ann_b]", f"[ann_a, {name!r}]"))
    assert_refused(kpdeliver("check", "acme.yaml", cwd=clients), "field 'annotators.1'", repr(name))
    assert_refused(kpdeliver("assign", "--config", "acme.yaml", cwd=clients), repr(name))
    assert not (clients / "batch" / "tasks").exists() and not (clients / "escape").exists()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("client: " + "[" * 100_000, "nests too deeply"),
        ("client: acme\ndataset: \xff\xfe\n", "not UTF-8 text"),
    ],
)
def test_a_config_unreadable_as_yaml_is_one_sentence(clients, text, fragment):
    (clients / "acme.yaml").write_bytes(text.encode("latin-1"))
    assert_refused(kpdeliver("check", "acme.yaml", cwd=clients), "acme.yaml", fragment)
