"""One grammar for the command line, a test per inconsistency an operator met: `-c` is `--config`
everywhere and no short flag has two meanings; `check` and `iam` take the config either way; the
commands that read a store take the config's storage settings; options are refused before any
work; tables stay readable when piped, and `--json` where a script reads them; `releases` from the
root or a client folder; `splits: {train: 1.0}`; counts said with the right plural; `share` links
the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from kpdeliver.cli import COMMANDS, sub_app_commands
from kpdeliver.release import catalog
from kpdeliver.storage import open_store
from tests.cli.test_keys_sign import publish_release
from tests.config.clients import GOOD, make_clients
from tests.release_helpers import publish_small_release

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    from kpdeliver.cli import app

    r = CliRunner().invoke(app, list(args), env=env)
    return r.exit_code, r.output


def cli_stdout(*args: str) -> tuple[int, str]:
    """Exit code and stdout only (progress lines go to stderr): what a script piping the JSON reads."""
    from kpdeliver.cli import app

    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout


def _options() -> dict[str, list[tuple[str, list[str]]]]:
    """command -> [(parameter name, its option strings)] for every command of the CLI (`keys new` too)."""
    out = {}
    for name, module in COMMANDS.items():
        command = sub_app_commands(module)[name]
        subs = getattr(command, "commands", None)
        for label, cmd in ({f"{name} {n}": c for n, c in subs.items()} if subs else {name: command}).items():
            out[label] = [(p.name, [*p.opts, *p.secondary_opts]) for p in cmd.params]
    return out


def test_no_short_flag_has_two_meanings_and_c_is_always_config():
    meaning: dict[str, set[str]] = {}
    for command, params in _options().items():
        for _, opts in params:
            longs = sorted(o for o in opts if o.startswith("--"))
            for short in (o for o in opts if re.fullmatch(r"-[A-Za-z]", o)):
                meaning.setdefault(short, set()).update(longs)
                if short == "-c":
                    assert longs == ["--config"], f"{command}: -c means {longs}"
    assert {s: m for s, m in meaning.items() if len(m) > 1} == {}


@pytest.mark.parametrize(
    "command",
    [
        "deliver",
        "assign",
        "sample",
        "push",
        "pull",
        "validate",
        "check",
        "iam",
        "verify",
        "share",
        "sign",
        "releases",
    ],
)
def test_every_command_that_takes_a_client_config_takes_it_as_config_c(command):
    opts = [o for _, os_ in _options()[command] for o in os_]
    assert "--config" in opts and "-c" in opts


def test_check_takes_the_config_as_argument_or_as_config(tmp_path):
    folder = make_clients(tmp_path)
    for args in (
        ["check", str(folder / "acme.yaml")],
        ["check", "--config", str(folder / "acme.yaml")],
        ["check", "-c", str(folder / "acme.yaml")],
    ):
        code, out = cli(*args, "--no-source")
        assert code == 0 and "usable (acme/pose-2026" in out, out
    code, out = cli("check", "--no-source")
    assert code == 2 and "--config" in out


def test_check_and_verify_print_json_for_scripts(tmp_path):
    folder = make_clients(tmp_path)
    code, out = cli("check", "-c", str(folder / "acme.yaml"), "--no-source", "--json")
    assert code == 0 and json.loads(out) | {"warnings": []} == {
        "config": str(folder / "acme.yaml"),
        "usable": True,
        "problems": [],
        "warnings": [],
        "client": "acme",
        "dataset": "pose-2026",
        "schema": "coco17",
    }
    (folder / "bad.yaml").write_text(GOOD.replace("coco17", "coco99").replace("acme", "other"))
    code, out = cli("check", str(folder / "bad.yaml"), "--no-source", "--json")
    assert code == 2 and not json.loads(out)["usable"] and "coco99" in json.loads(out)["problems"][0]
    release = publish_release(tmp_path / "pub", 1)
    code, out = cli_stdout("verify", str(release), "--json")
    result = json.loads(out)
    assert code == 0 and result["ok"] and result["problems"] == [] and result["release"] == str(release)
    (release / "qa" / "report.html").write_text("changed")
    code, out = cli_stdout("verify", str(release), "--json")
    assert code == 1 and [p["path"] for p in json.loads(out)["problems"]] == ["qa/report.html"]


def test_iam_takes_the_config_as_argument_or_as_config(tmp_path):
    (tmp_path / "acme.yaml").write_text(
        GOOD.replace("./batch", "s3://vendor-in/acme").replace("./releases", "s3://vendor-out")
    )
    by_argument = cli("iam", str(tmp_path / "acme.yaml"))
    assert by_argument[0] == 0 and "s3://" not in by_argument[1]
    assert cli("iam", "-c", str(tmp_path / "acme.yaml")) == by_argument
    assert json.loads(by_argument[1])["Statement"]


@pytest.mark.parametrize("expires", ["30d", "8d", "7d1s"])
def test_share_refuses_links_longer_than_s3_allows_before_any_work(expires):
    # nothing is opened: the location is not even reachable, and the refusal still comes first
    code, out = cli(
        "share",
        "s3://no-such-bucket-anywhere/acme/pose/v0001",
        "--expires",
        expires,
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
    )
    assert code == 2 and "at most 7d" in out


@pytest.mark.parametrize("expires", ["7d7d", "0s", "0", "7 days", "-1d", "h", "1.5d", "7D"])
def test_share_reads_durations_strictly(tmp_path, expires):
    release = publish_release(tmp_path, 1)
    code, out = cli("share", str(release), "--expires", expires)
    assert code == 2 and "duration" in out
    assert not (release.parent / "v0001.zip").exists()


def test_share_on_a_local_release_says_links_do_not_expire_and_links_the_report(tmp_path):
    release = publish_release(tmp_path, 1)
    code, out = cli("share", str(release), "--expires", "30d")
    assert code == 0, out
    assert "do not expire" in out
    report = next(line for line in out.splitlines() if line.startswith("report:"))
    assert report.split()[-1] == (release / "qa" / "report.html").as_uri()


def _plain_table_ok(out: str, long_value: str) -> None:
    assert not set("│┃━─┏┡└") & set(out), out  # plain columns, no box drawing
    assert any(long_value in line for line in out.splitlines()), out  # never folded across lines


def test_inspect_and_releases_tables_stay_readable_when_piped(tmp_path):
    deep = tmp_path / "a-rather-long-folder-name-for-a-client-batch" / "annotations-from-the-second-vendor"
    deep.mkdir(parents=True)
    coco = deep / "exported-keypoints-with-a-long-name.json"
    coco.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
                "annotations": [
                    {
                        "id": 1,
                        "image_id": 1,
                        "category_id": 1,
                        "keypoints": [10, 10, 2] * 17,
                        "num_keypoints": 17,
                        "bbox": [0, 0, 50, 50],
                    }
                ],
                "categories": [
                    {"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)], "skeleton": []}
                ],
            }
        )
    )
    code, out = cli("inspect", str(coco))
    assert code == 0, out
    _plain_table_ok(out, str(coco))
    publish_release(tmp_path / "pub", 1)
    code, out = cli("releases", str(tmp_path / "pub" / "releases"))
    assert code == 0, out
    _plain_table_ok(out, "created (UTC)")
    assert re.search(r"^acme +pose +v0001 +\d{4}-\d\d-\d\d \d\d:\d\d +fail +1 +2 +1 +1 +—$", out, re.M), out


def test_releases_from_the_root_a_client_folder_or_the_config_and_as_json(tmp_path):
    publish_release(tmp_path, 1)
    publish_release(tmp_path, 2)
    root = tmp_path / "releases"
    from_root = cli_stdout("releases", str(root), "--json")
    assert from_root[0] == 0
    rows = json.loads(from_root[1])
    assert [(r["client"], r["dataset"], r["version"]) for r in rows] == [
        ("acme", "pose", 1),
        ("acme", "pose", 2),
    ]
    assert (
        cli_stdout("releases", str(root / "acme"), "--json") == from_root
    )  # a client's folder: found, not "none"
    assert cli_stdout("releases", str(root), "--client", "acme", "--json") == from_root
    (tmp_path / "acme.yaml").write_text(GOOD.replace("pose-2026", "pose"))
    assert cli_stdout("releases", "-c", str(tmp_path / "acme.yaml"), "--json") == from_root
    assert cli("releases", str(root), "-c", "acme")[0] == 2  # -c is a config now, never a client name


def test_splits_train_only_has_no_hidden_val(tmp_path):
    from kpdeliver.config import load_config

    (tmp_path / "acme.yaml").write_text(GOOD + "splits: {train: 1.0}\n")
    splits = load_config(tmp_path / "acme.yaml").splits
    assert (splits.train, splits.val, splits.test) == (1.0, 0.0, 0.0) and splits.ratios() == {"train": 1.0}
    assert cli("check", str(tmp_path / "acme.yaml"), "--no-source")[0] == 0
    (tmp_path / "acme.yaml").write_text(GOOD + "splits: {train: 0.8}\n")
    code, out = cli("check", str(tmp_path / "acme.yaml"), "--no-source")
    assert code == 2 and "got 0.8" in out
    (tmp_path / "acme.yaml").write_text(GOOD + "splits: {seed: 3}\n")  # no fraction given: the defaults
    assert load_config(tmp_path / "acme.yaml").splits.ratios() == {"train": 0.8, "val": 0.2}


def test_one_plural_helper_and_counts_said_right():
    from kpdeliver import config, progress, words
    from kpdeliver.cli import output

    assert config.plural is words.plural and progress.plural is words.plural and output.plural is words.plural
    assert (words.plural(1, "error"), words.plural(2, "error"), words.plural(1200, "file")) == (
        "1 error",
        "2 errors",
        "1,200 files",
    )
    copies = [
        p
        for p in (ROOT / "kpdeliver").rglob("*.py")
        if re.search(r"^def _?plural\(", p.read_text(), re.M) and p.name != "words.py"
    ]
    assert copies == []


def test_convert_says_one_file_written(tmp_path):
    coco = tmp_path / "one.json"
    coco.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
                "annotations": [
                    {
                        "id": 1,
                        "image_id": 1,
                        "category_id": 1,
                        "keypoints": [10, 10, 2] * 17,
                        "num_keypoints": 17,
                        "bbox": [0, 0, 50, 50],
                    }
                ],
                "categories": [
                    {"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)], "skeleton": []}
                ],
            }
        )
    )
    code, out = cli("convert", str(coco), "--to", "coco", "--out", str(tmp_path / "out"))
    assert code == 0, out
    assert "1 image, 1 instance" in out and "1 file written" in out and "1 files" not in out


@pytest.mark.slow
def test_verify_share_and_releases_take_the_stores_settings_from_the_config(
    s3_bucket, s3_endpoint, tmp_path, monkeypatch
):
    store, source = open_store(f"s3://{s3_bucket}/releases"), open_store(f"s3://{s3_bucket}/batches/acme")
    pub = publish_small_release(store, source)
    catalog.append_release(store, "acme", "pose", pub.version)
    config = tmp_path / "acme.yaml"
    config.write_text(
        GOOD.replace("pose-2026", "pose")
        .replace("./batch", f"s3://{s3_bucket}/batches/acme")
        .replace("./releases", f"s3://{s3_bucket}/releases")
        + f"storage: {{endpoint_url: '{s3_endpoint}'}}\n"
    )
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # only the config knows the endpoint
    code, out = cli("verify", pub.location, "-c", str(config))
    assert code == 0 and "every file matches" in out, out
    code, out = cli("share", pub.location, "--config", str(config), "--expires", "2h")
    assert code == 0 and "report:   http" in out and "qa/report.html" in out, out
    code, out = cli_stdout("releases", "-c", str(config), "--json")
    assert code == 0 and [r["version"] for r in orjson.loads(out)] == [1], out
    code, out = cli("keys", "new", "--out", str(tmp_path / "keys"))
    assert code == 0, out
    code, out = cli(
        "sign", pub.location, "-c", str(config), "--key", str(tmp_path / "keys" / "signing-key.pem")
    )
    assert code == 0 and "signed s3://" in out, out
    code, out = cli(
        "verify", pub.location, "-c", str(config), "--public-key", str(tmp_path / "keys" / "signing-key.pub")
    )
    assert code == 0 and "(pinned with --public-key)" in out, out


def test_an_unreachable_store_is_said_with_the_endpoint_that_was_tried(tmp_path):
    config = tmp_path / "acme.yaml"
    config.write_text(
        GOOD.replace("./batch", "s3://in/acme").replace("./releases", "s3://out")
        + "storage: {endpoint_url: 'http://127.0.0.1:9', max_attempts: 1}\n"
    )
    from tests.s3_server import DUMMY_AWS_ENV

    # the config's endpoint alone (another test's AWS_ENDPOINT_URL would take precedence, as documented)
    env = {**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL": None}
    code, out = cli("verify", "s3://out/acme/pose/v0001", "-c", str(config), env=env)
    assert (
        code == 2 and "the release was not checked" in out and "is the endpoint http://127.0.0.1:9 up" in out
    ), out
