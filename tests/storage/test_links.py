"""The local store never follows a symbolic link below its root, whatever kind it is, and the
files it writes honour the process umask."""

from __future__ import annotations

import os
import stat

import pytest

from kpdeliver.ingest.batch import ingest_images
from kpdeliver.storage import LinkError, LocalStore, StorageError
from tests.photo_fixtures import jpeg

SECRET = b"other client's bytes"


@pytest.fixture
def planted(tmp_path):
    """A store root beside an outside folder, with one link of every kind planted in the root."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.jpg").write_bytes(SECRET)
    (outside / "sub" / "deep.jpg").write_bytes(SECRET)
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    (root / "images" / "ok.jpg").write_bytes(jpeg(8, 8))
    os.symlink(outside / "secret.jpg", root / "images" / "file_link.jpg")  # absolute
    os.symlink("../../outside/sub", root / "images" / "dir_link")  # relative, a folder
    os.symlink(tmp_path / "nowhere.jpg", root / "images" / "dangling.jpg")
    os.symlink("loop_b.jpg", root / "images" / "loop_a.jpg")
    os.symlink("loop_a.jpg", root / "images" / "loop_b.jpg")
    os.symlink(outside, root / "exports")  # a top-level folder link
    return LocalStore(root)


LINKS = [
    "exports",
    "images/dangling.jpg",
    "images/dir_link",
    "images/file_link.jpg",
    "images/loop_a.jpg",
    "images/loop_b.jpg",
]
THROUGH = [
    "images/file_link.jpg",
    "images/dir_link/deep.jpg",
    "images/dangling.jpg",
    "images/loop_a.jpg",
    "exports/secret.jpg",
    "exports/sub/deep.jpg",
]


def test_links_are_not_listed_but_named_by_skipped(planted):
    assert list(planted.list()) == ["images/ok.jpg"]
    assert list(planted.list("images/")) == ["images/ok.jpg"]
    assert list(planted.list("exports/")) == [] and list(planted.list("images/dir_link")) == []
    assert [k for k, _ in planted.skipped()] == LINKS
    assert all("symbolic link" in why for _, why in planted.skipped())
    assert planted.skipped("exports/") == [("exports", "is a symbolic link")]


@pytest.mark.parametrize("key", THROUGH)
def test_reads_through_any_link_are_refused(planted, key):
    for read in (planted.get, lambda k: planted.open(k).read(), planted.size):
        with pytest.raises(LinkError, match="symbolic link"):
            read(key)
    assert not planted.exists(key)
    other = LocalStore(planted.root.parent / "copy")
    with pytest.raises(LinkError):
        other.copy_from(planted, key, "stolen.jpg")
    assert not (planted.root.parent / "copy" / "stolen.jpg").exists()
    with pytest.raises(LinkError):  # a copy within the store is a hard link: never of a link, nor through one
        planted.copy(key, "stolen.jpg")
    assert not planted.exists("stolen.jpg") and not [
        n for n in os.listdir(planted.root) if "stolen" in n or n.startswith(".kp-tmp")
    ]


def test_writes_and_deletes_through_a_folder_link_are_refused(planted):
    with pytest.raises(LinkError):
        planted.put("images/dir_link/new.jpg", b"x")
    with pytest.raises(LinkError):
        planted.put_if_absent("exports/new.jpg", b"x")
    with pytest.raises(LinkError):
        planted.delete("exports/secret.jpg")
    assert (planted.root.parent / "outside" / "secret.jpg").read_bytes() == SECRET
    assert not (planted.root.parent / "outside" / "sub" / "new.jpg").exists()
    planted.put("images/file_link.jpg", b"replaced")  # replaces the link itself, never its target
    assert planted.get("images/file_link.jpg") == b"replaced"
    assert (planted.root.parent / "outside" / "secret.jpg").read_bytes() == SECRET


def test_a_fifo_is_refused_without_hanging(tmp_path):
    store = LocalStore(tmp_path)
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(StorageError, match="not a regular file"):
        store.get("pipe.jpg")
    assert list(store.list()) == [] and store.skipped()[0][0] == "pipe.jpg"


def test_ingest_turns_every_link_into_a_finding(planted):
    result = ingest_images(planted)
    assert result.images.file_name.tolist() == ["ok.jpg"]
    rows = result.findings.to_pylist()
    assert sorted(r["file_name"] for r in rows) == LINKS
    assert {(r["check"], r["severity"]) for r in rows} == {("ingest.symlink", "error")}
    assert (
        sorted(result.refused["key"].to_pylist()) == [k for k in LINKS if k.startswith("images/")]
        and result.listed == 6
    )


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        store = LocalStore(tmp_path / "r")
        store.put("a/put.bin", b"x")
        store.put_if_absent("a/claim.bin", b"x")
        store.copy("a/put.bin", "b/copy.bin")
        LocalStore(tmp_path / "r2").copy_from(store, "a/put.bin", "c.bin")
    finally:
        os.umask(old)
    for path in (
        tmp_path / "r/a/put.bin",
        tmp_path / "r/a/claim.bin",
        tmp_path / "r/b/copy.bin",
        tmp_path / "r2/c.bin",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    assert stat.S_IMODE((tmp_path / "r/a").stat().st_mode) == 0o777 & ~umask
