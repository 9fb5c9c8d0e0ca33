"""`verify_release` / `kpdeliver verify` and `kpdeliver share` on a published release, on the local
store and on S3 (moto_server)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kpdeliver.release.layout import release_parent_and_name
from kpdeliver.release.share import parse_duration
from kpdeliver.release.verify import verify_release
from kpdeliver.storage import LocalStore, open_store
from tests.release_helpers import publish_small_release

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def published(request, tmp_path):
    """(release store, release-folder location) of a small release published by kpdeliver.release.publish."""
    if request.param == "local":
        store, source = LocalStore(tmp_path / "releases"), LocalStore(tmp_path / "batch")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        store, source = open_store(f"s3://{bucket}/releases"), open_store(f"s3://{bucket}/batches/acme")
    pub = publish_small_release(store, source)
    return store, pub.location, pub.prefix


def cli(*args: str) -> tuple[int, str]:
    from kpdeliver.cli import app

    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.output


def test_verify_is_clean_then_names_each_kind_of_difference(published):
    store, location, prefix = published
    assert verify_release(store, prefix) == []
    code, out = cli("verify", location)
    assert code == 0 and "every file matches" in out

    data = bytearray(store.get(f"{prefix}/yolo/images/train/a.jpg"))
    data[100] ^= 0x01  # one byte
    store.put(f"{prefix}/yolo/images/train/a.jpg", bytes(data))
    store.delete(f"{prefix}/qa/report.html")
    store.put(f"{prefix}/coco/extra.json", b"{}")
    problems = verify_release(store, prefix)
    assert [(p.kind, p.path) for p in problems] == [
        ("extra", "coco/extra.json"),
        ("missing", "qa/report.html"),
        ("changed", "yolo/images/train/a.jpg"),
    ]
    code, out = cli("verify", location)
    assert code == 1
    for name in ("yolo/images/train/a.jpg", "qa/report.html", "coco/extra.json"):
        assert name in out


def test_verify_of_something_that_is_not_a_release(published):
    _store, location, _prefix = published
    code, out = cli("verify", location.rsplit("/", 1)[0] + "/v0099")
    assert code == 1 and "manifest.json does not exist" in out


def test_share_builds_one_archive_and_gives_links(published, tmp_path):
    store, location, prefix = published
    code, out = cli("share", location, "--expires", "2h")
    assert code == 0, out
    assert "built archive" in out
    archive = store.get(prefix + ".zip")
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("v0001/manifest.json"))
        assert sorted(names) == sorted(["v0001/manifest.json", *(f"v0001/{p}" for p in manifest["files"])])
        for p, meta in manifest["files"].items():
            assert hashlib.sha256(zf.read(f"v0001/{p}")).hexdigest() == meta["sha256"]
    assert verify_release(store, prefix) == []  # the archive sits beside the release, not in it
    code, again = cli("share", location)
    assert code == 0 and "built archive" not in again and store.get(prefix + ".zip") == archive
    links = [
        line.split(None, 1)[1] for line in out.splitlines() if line.startswith(("archive:", "manifest:"))
    ]
    if isinstance(store, LocalStore):
        assert links[0].startswith("file://") and "presigned links need the release on S3" in out
        assert Path(links[0].removeprefix("file://")).read_bytes() == archive
    else:
        assert "X-Amz-Expires=7200" in links[0]
        with urllib.request.urlopen(links[0]) as r:  # moto on loopback serves the presigned URL
            assert r.read() == archive
        with urllib.request.urlopen(links[1]) as r:
            assert json.loads(r.read())["version"] == 1


def test_share_refuses_a_release_that_does_not_verify(published):
    store, location, prefix = published
    store.put(f"{prefix}/coco/train.json", b'{"images": [1]}')
    code, out = cli("share", location)
    assert code == 1 and "does not match its manifest" in out and "coco/train.json" in out
    assert not store.exists(prefix + ".zip")


def test_share_rejects_links_longer_than_s3_allows(published):
    store, location, prefix = published
    code, out = cli("share", location, "--expires", "8d")
    if isinstance(store, LocalStore):
        assert code == 0 and "do not expire" in out
    else:  # refused before any work: nothing verified, no archive built
        assert code == 2 and "at most 7d" in out and not store.exists(prefix + ".zip")


def test_durations_and_locations():
    assert parse_duration("7d") == 604800 and parse_duration("1d12h") == 129600 and parse_duration("90") == 90
    with pytest.raises(ValueError):
        parse_duration("seven days")
    assert release_parent_and_name("s3://b/rel/acme/pose/v0003/") == ("s3://b/rel/acme/pose", "v0003")


def test_verify_and_share_start_without_prefect_or_great_expectations(tmp_path):
    code = (
        "import sys; from typer.testing import CliRunner; from kpdeliver.cli import app; "
        f"r = CliRunner().invoke(app, ['verify', {str(tmp_path)!r}]); "
        "bad = [m for m in ('prefect', 'great_expectations', 'boto3') if m in sys.modules]; "
        "print(r.exit_code, bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["1", "[]"], out.stderr


def planted_archive(top: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{top}/manifest.json", b"{}")
        zf.writestr("../../evil.sh", b"#!/bin/sh\nrm -rf ~\n")
    return buf.getvalue()


def test_share_replaces_a_planted_archive_and_verify_names_it(published):
    store, location, prefix = published
    store.put(prefix + ".zip", planted_archive("v0001"))
    code, out = cli("verify", location)
    assert code == 1 and "archive: v0001.zip — member ../../evil.sh unsafe member name" in out, out
    code, out = cli("share", location)
    assert code == 0 and "replaced archive" in out, out
    with zipfile.ZipFile(io.BytesIO(store.get(prefix + ".zip"))) as zf:
        names = zf.namelist()
    assert "../../evil.sh" not in names and all(n.startswith("v0001/") for n in names)
    assert cli("verify", location)[0] == 0
    code, again = cli("share", location)  # the rebuilt archive is kept, byte for byte
    assert code == 0 and "replaced" not in again and "built" not in again


def test_an_archive_with_a_changed_member_is_caught_and_rebuilt(published):
    store, location, prefix = published
    assert cli("share", location)[0] == 0
    good = store.get(prefix + ".zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():  # a well-formed zip whose one member holds other bytes
            data = src.read(info)
            dst.writestr(
                info, b'{"images": ["swapped"]}' if info.filename.endswith("coco/train.json") else data
            )
    store.put(prefix + ".zip", buf.getvalue())
    code, out = cli("verify", location)
    assert code == 1 and "member v0001/coco/train.json differs from the release's file" in out, out
    code, out = cli("share", location)
    assert code == 0 and "replaced archive" in out and store.get(prefix + ".zip") == good


def test_verify_of_an_unreachable_store_is_exit_2_not_tampering(monkeypatch):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    for command in ("verify", "share"):
        code, out = cli(
            command, "s3://bucket/releases/acme/pose/v0001", "--endpoint-url", f"http://127.0.0.1:{port}"
        )
        assert code == 2, out
        assert "store unreachable" in out and "cannot be reached" in out and "does not match" not in out, out
