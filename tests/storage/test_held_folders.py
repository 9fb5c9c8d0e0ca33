"""LocalStore.holding_folders: folder descriptors opened once for a batch of reads and writes,
bounded in number, closed when the last user ends, and never a way around the no-links rule."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from kpdeliver.storage import LocalStore, StorageError
from kpdeliver.storage import local as local_module

FD_DIR = next((d for d in ("/proc/self/fd", "/dev/fd") if Path(d).is_dir()), "/proc/self/fd")  # Linux; macOS


def open_fds() -> int:
    return len(os.listdir(FD_DIR))  # on a system with neither folder the tests fail here, naming it


def test_many_folders_stay_within_the_descriptor_bound(tmp_path):
    store = LocalStore(tmp_path)
    n = local_module._HELD_MAX * 3
    for i in range(n):
        store.put(f"videos/v{i:04d}/frame.jpg", b"x%d" % i)
    before = open_fds()
    with store.holding_folders():
        got = [store.get(f"videos/v{i:04d}/frame.jpg") for i in range(n)]
        assert open_fds() - before <= local_module._HELD_MAX + 2
    assert got == [b"x%d" % i for i in range(n)]
    assert open_fds() == before  # every kept descriptor closed with the block


def test_a_held_folder_swapped_for_a_link_is_never_followed(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.put("images/a.jpg", b"ours")
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "b.jpg").write_bytes(b"secret")
    with store.holding_folders():
        assert store.get("images/a.jpg") == b"ours"  # images/ is now held
        os.rename(tmp_path / "store/images", tmp_path / "store/moved")
        os.symlink(secret, tmp_path / "store/images")
        with pytest.raises(StorageError):
            store.get("images/b.jpg")  # the held folder is the one that was moved away
    with pytest.raises(StorageError):  # and outside the block the walk refuses the link
        store.get("images/b.jpg")


def test_descriptors_outlive_a_block_that_ends_while_another_thread_reads(tmp_path):
    store = LocalStore(tmp_path)
    for i in range(50):
        store.put(f"a/f{i}", b"%d" % i)
    errors, go = [], threading.Event()

    def reader():
        go.wait()
        try:
            for _ in range(20):
                for i in range(50):
                    assert store.get(f"a/f{i}") == b"%d" % i
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    go.set()
    for _ in range(50):  # blocks that open and close the kept descriptors under the readers
        with store.holding_folders():
            store.get("a/f0")
    for t in threads:
        t.join()
    assert not errors
