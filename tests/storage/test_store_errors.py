"""Every store failure is a StoreFault: one sentence naming the location and the cause, with a
`cause` and whether trying again may help. The faults are real: a full or read-only tmpfs in a
private mount namespace (`unshare --mount`), permission bits met by a process started without
CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (tests run as root), a path that is a file, and S3
errors from moto behind the fault proxy or from an environment without credentials."""

from __future__ import annotations

import ctypes
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from kpdeliver.storage import LocalStore, StorageError, StoreFault, StoreUnreachable, open_store
from kpdeliver.storage.errors import retryable

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from kpdeliver.storage import LocalStore, StorageError
store, op = LocalStore(sys.argv[1]), sys.argv[2]
try:
    if op == "exists":
        print(store.exists("annotations/ann_c/export.json"))
    else:
        store.put("a/b.bin", b"x" * 300_000) if op == "put" else list(store.list(""))
        print("ok")
except StorageError as e:
    print(e.cause, str(e), sep="|")
"""


def probe(root: Path, op: str, *, wrap: tuple[str, ...] = (), preexec_fn=None) -> tuple[str, str]:
    """(cause, sentence) of a put, a listing or an `exists` of a LocalStore at `root`, in a child process."""
    out = subprocess.run(
        [*wrap, sys.executable, "-c", PROBE, str(root), op],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=preexec_fn,
        timeout=120,
    )
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    cause, _, sentence = out.stdout.strip().partition("|")
    return cause, sentence


def in_tmpfs(folder: Path, options: str) -> tuple[str, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    user = () if os.geteuid() == 0 else ("--user", "--map-root-user")  # unprivileged: in a user namespace
    return (
        "unshare",
        *user,
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount -t tmpfs -o "$1" tmpfs "$2" && shift 2 && exec "$@"',
        "sh",
        options,
        str(folder),
    )


def without_dac_override() -> None:
    if os.geteuid() != 0:  # permission bits already apply
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "cannot drop a capability")


def test_disk_full(tmp_path):
    root = tmp_path / "releases"
    cause, sentence = probe(root, "put", wrap=in_tmpfs(root, "size=64k"))
    assert cause == "disk full"
    assert sentence == f"cannot write {root}/a/b.bin: the disk is full (no space left on the device)"


def test_read_only(tmp_path):
    root = tmp_path / "releases"
    cause, sentence = probe(root, "put", wrap=in_tmpfs(root, "ro,size=1m"))
    assert (
        cause == "read-only"
        and sentence.startswith(f"cannot write {root}/a/b.bin: ")
        and "read-only" in sentence
    )


def test_permission_denied_on_write_and_on_an_unreadable_folder(tmp_path):
    root = tmp_path / "releases"
    root.mkdir()
    root.chmod(0o555)
    cause, sentence = probe(root, "put", preexec_fn=without_dac_override)
    assert (cause, sentence) == ("permission denied", f"cannot write {root}/a/b.bin: permission denied")

    batch = tmp_path / "batch"
    (batch / "annotations" / "ann_c").mkdir(parents=True)
    (batch / "annotations" / "ann_c" / "export.json").write_text("[]")
    (batch / "annotations" / "ann_c").chmod(0)
    try:  # a listing used to skip the folder it could not open, and `exists` to say "absent", silently
        listed = probe(batch, "list", preexec_fn=without_dac_override)
        exists = probe(batch, "exists", preexec_fn=without_dac_override)
    finally:
        (batch / "annotations" / "ann_c").chmod(0o755)
    assert listed == ("permission denied", f"cannot list {batch}/annotations/ann_c: permission denied")
    assert exists[0] == "permission denied" and "annotations/ann_c/export.json" in exists[1]


def test_a_store_path_that_is_a_file(tmp_path):
    (tmp_path / "releases").write_text("x")
    for store in (LocalStore(tmp_path / "releases"), LocalStore(tmp_path / "releases" / "deeper")):
        with pytest.raises(StoreFault) as e:
            store.put("v0001/manifest.json", b"{}")
        assert e.value.cause == "not a folder" and str(tmp_path / "releases") in str(e.value)
    with pytest.raises(StoreFault, match="it is a file, not a folder"):
        list(LocalStore(tmp_path / "releases").list(""))


def test_s3_access_denied_names_the_object_and_is_not_retried(s3_bucket, fault_proxy):
    proxy = fault_proxy(rate=0.0, deny=lambda method, path: method == "PUT")
    store = open_store(f"s3://{s3_bucket}/releases", {"endpoint_url": proxy.url})
    with pytest.raises(StoreFault) as e:
        store.put("acme/v0001/manifest.json", b"{}")
    assert e.value.cause == "access denied" and not retryable(e.value)
    where = f"s3://{s3_bucket}/releases/acme/v0001/manifest.json"
    assert str(e.value) == f"cannot write {where}: access denied (AccessDenied)"


def test_s3_without_credentials(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = open_store(
        "s3://kp-nobody/releases", {"endpoint_url": "http://127.0.0.1:9", "region": "us-east-1"}
    )
    with pytest.raises(StoreFault) as e:
        list(store.list("acme/"))
    assert e.value.cause == "no credentials" and "s3://kp-nobody/releases/acme/" in str(e.value)
    assert "no AWS credentials" in str(e.value)


def test_s3_server_errors_are_retried_refusals_are_not(s3_bucket, fault_proxy):
    proxy = fault_proxy(rate=1.0, kinds=("500",))
    store = open_store(f"s3://{s3_bucket}/b", {"endpoint_url": proxy.url, "max_attempts": 1})
    with pytest.raises(StoreFault) as e:
        store.get("x")
    assert retryable(e.value) and "InternalError (HTTP 500)" in str(e.value)
    assert retryable(StoreUnreachable("cannot read s3://b/x: the S3 endpoint cannot be reached"))
    assert not retryable(StorageError("no object /r/x")) and retryable(ValueError("a bug"))


def test_faults_travel_between_processes_whole():
    fault = pickle.loads(pickle.dumps(StoreFault("cannot write /r/x: the disk is full", "disk full")))
    assert (str(fault), fault.cause, fault.transient) == (
        "cannot write /r/x: the disk is full",
        "disk full",
        False,
    )


def test_a_servers_message_reaches_the_terminal_as_one_plain_line():
    from kpdeliver.storage.errors import describe, s3_fault

    fault = s3_fault("Weird", 400, "bad\x1b[2J\x1b]0;title\x07\r\nnext line" + "x" * 900, "read", "s3://b/k")
    line = describe(fault)
    assert line.startswith("cannot read s3://b/k: Weird (HTTP 400) bad") and "next line" in line
    assert line.isprintable() and len(line) <= 500
