"""Publishing on a local folder renames the claimed staging folder into `v<NNNN>/` (one rename, no
file linked or copied), and keeps every guarantee of the copy it replaces: a run killed between
the rename and the manifest leaves no visible release and the next run finishes it from the
moved marker, a marker left after the manifest is removed by the next run, only the files the
STAGED marker lists are published, and a staged folder that lost a file is never published."""

from __future__ import annotations

import os

import pytest

from kpdeliver.release import publish as publish_module
from kpdeliver.release.layout import STAGED, release_prefix
from kpdeliver.release.leftovers import find_leftovers, remove_leftovers
from kpdeliver.release.publish import (
    PublishError,
    clean_staging,
    find_duplicate,
    find_staged,
    publish,
    published_versions,
    staging_prefix,
)
from kpdeliver.release.stage import stage_plan
from kpdeliver.release.verify import verify_release
from kpdeliver.storage import LocalStore, StorageError
from tests.release_helpers import tiny_release_plan

FP = "ab" * 32
V1 = release_prefix("acme", "pose", 1)


@pytest.fixture
def staged(tmp_path) -> tuple[LocalStore, str]:
    """A releases store with the tiny release staged (its images copied), and the staging folder."""
    store = LocalStore(tmp_path / "releases")
    prefix = staging_prefix("acme", "pose", FP)
    source = LocalStore(tmp_path / "source")
    stage_plan(tiny_release_plan(source), release=store, source=source, prefix=prefix)
    return store, prefix


def _publish_killed_at(store: LocalStore, prefix: str, step: str, monkeypatch) -> None:
    """Publish, the process dying at `step` (a function of kpdeliver.release.publish)."""

    def killed(*args, **kwargs):
        raise StorageError(f"killed at {step}")

    with monkeypatch.context() as m:
        m.setattr(publish_module, step, killed)
        with pytest.raises(StorageError, match="killed"):
            _publish(store, prefix)


def _publish(store: LocalStore, prefix: str):
    return publish(
        store=store, client="acme", dataset="pose", fingerprint=FP, staged_prefix=prefix, manifest_fields={}
    )


def test_the_staged_folder_becomes_the_release_folder_in_one_rename(staged):
    store, prefix = staged
    image = next(k for k in store.list(prefix + "/") if "/yolo/images/" in k)
    before = os.stat(store.root / image)
    published = _publish(store, prefix)
    after = os.stat(store.root / V1 / image[len(prefix) + 1 :])
    assert published.version == 1 and not published.resumed
    assert (after.st_ino, after.st_nlink) == (before.st_ino, 1)  # moved, neither linked nor copied
    assert list(store.list(prefix + "/")) == [] and not store.exists(f"{V1}/{STAGED}")
    assert verify_release(store, V1) == []


def test_a_run_killed_between_the_rename_and_the_manifest_is_finished_from_the_moved_marker(
    staged, monkeypatch
):
    store, prefix = staged
    _publish_killed_at(store, prefix, "_sign_and_write", monkeypatch)
    assert published_versions(store, "acme", "pose") == []  # nothing visible
    assert store.exists(f"{V1}/{STAGED}") and list(store.list(prefix + "/")) == []
    # the next run of these inputs finds the moved folder as its staging area: nothing is staged again
    resume_from = find_staged(store, "acme", "pose", FP, prefer=staging_prefix("acme", "pose", FP))
    assert resume_from == V1
    published = _publish(store, resume_from)
    assert published.version == 1 and not store.exists(f"{V1}/{STAGED}")
    assert verify_release(store, V1) == []


@pytest.mark.parametrize("finisher", ["the next run", "kpdeliver clean"])
def test_a_marker_left_by_a_run_killed_after_the_manifest_is_removed_alone(staged, monkeypatch, finisher):
    store, prefix = staged
    _publish_killed_at(store, prefix, "remove_moved_marker", monkeypatch)
    assert [p.kind for p in verify_release(store, V1)] == ["extra"]  # the marker, not listed
    if finisher == "the next run":  # it finds its inputs published and finishes as the flow does
        assert find_duplicate(store, "acme", "pose", FP) == 1
        clean_staging(store, "acme", "pose", FP)
    else:
        found = find_leftovers(store, "acme", older_than=0)
        assert [(f.folder, f.state, f.removable) for f in found] == [(f"{V1}/{STAGED}", "done", True)]
        assert remove_leftovers(store, found) == 1
    assert verify_release(store, V1) == [] and not store.exists(f"{V1}/{STAGED}")


def test_only_the_files_the_marker_lists_are_published(staged):
    store, prefix = staged
    store.put(f"{prefix}/yolo/labels/train/stray.txt", b"0 0.5 0.5 0.1 0.1\n")
    os.symlink("/etc/hostname", store.root / prefix / "qa" / "planted-link")
    published = _publish(store, prefix)
    assert not store.exists(f"{V1}/yolo/labels/train/stray.txt")
    assert not os.path.lexists(store.root / V1 / "qa" / "planted-link")
    assert verify_release(store, V1) == [] and published.version == 1


def test_a_staged_file_gone_missing_stops_the_publication_and_never_publishes_it_incomplete(staged, tmp_path):
    store, prefix = staged
    lost = next(k for k in store.list(prefix + "/") if k.endswith(".parquet"))
    store.delete(lost)
    with pytest.raises(PublishError, match="1 staged files are missing"):
        _publish(store, prefix)
    assert published_versions(store, "acme", "pose") == [] and not store.exists(f"{V1}/{STAGED}")
    # the moved folder is no resume point any more: a later run is refused, never publishes it
    again = staging_prefix("acme", "pose", FP)
    source = LocalStore(tmp_path / "source2")
    stage_plan(tiny_release_plan(source), release=store, source=source, prefix=again)
    assert find_staged(store, "acme", "pose", FP, prefer=again) == again
    with pytest.raises(PublishError, match="claimed for these inputs is gone"):
        _publish(store, again)
    assert published_versions(store, "acme", "pose") == []


class CopyingStagingOnlyDeleter(LocalStore):
    """A store that cannot rename and may delete only under `.staging/`, as an S3 worker's policy."""

    def move_folder(self, src_prefix: str, dst_prefix: str) -> bool:
        return False

    def delete(self, key: str) -> None:
        if not key.startswith(".staging/"):
            raise StorageError(f"access denied: delete {key}")
        super().delete(key)


def test_where_nothing_is_renamed_publication_deletes_nothing_outside_staging(tmp_path):
    store = CopyingStagingOnlyDeleter(tmp_path / "releases")
    prefix = staging_prefix("acme", "pose", FP)
    source = LocalStore(tmp_path / "source")
    stage_plan(tiny_release_plan(source), release=store, source=source, prefix=prefix)
    assert _publish(store, prefix).version == 1
    clean_staging(store, "acme", "pose", FP)
    assert verify_release(store, V1) == [] and list(store.list(".staging/")) == []
