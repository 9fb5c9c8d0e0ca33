"""A store failing inside the delivery flow is one sentence naming the place and the cause, exit 2,
no traceback (ours or Prefect's), and the Prefect flow run ends Failed with that sentence.

`kpdeliver deliver` runs as a subprocess, as a person runs it, against real faults:
- disk full: the releases folder is a 64 KiB tmpfs, mounted in a private mount namespace
  (`unshare --mount`, so nothing outlives the run), which fills up while staging (ENOSPC);
- read-only: the same with a read-only tmpfs (EROFS); and a releases path that is a regular file;
- permission: an annotator folder with mode 000, the run started without CAP_DAC_OVERRIDE and
  CAP_DAC_READ_SEARCH (dropped from the bounding set), so root meets permission bits (EACCES);
- changed under us: the source is on S3 (moto) behind a proxy that replaces an image with other
  bytes when it is read a second time, i.e. after ingest hashed it;
- access denied: the proxy answers 403 AccessDenied to every write under the releases prefix;
- no credentials: the releases are on S3 and the environment holds no AWS credentials.
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from kpdeliver.synth import make_demo_batch

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
KPDELIVER = [sys.executable, "-c", "from kpdeliver.cli import main; main()"]
NO_AWS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def batch(tmp_path: Path, **changes) -> Path:
    config = make_demo_batch(tmp_path, seed=4, n_images=6)
    doc = yaml.safe_load(config.read_text()) | changes
    config.write_text(yaml.safe_dump(doc))
    return config


def deliver(config: Path, *, env: dict | None = None, wrap: tuple[str, ...] = (), preexec_fn=None):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PREFECT_HOME": str(config.parent / "prefect"),
        **(env or {}),
    }
    return subprocess.run(
        [*wrap, *KPDELIVER, "deliver", "-c", str(config), "--work", str(config.parent / "work")],
        cwd=config.parent,
        env={k: v for k, v in env.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=900,
        preexec_fn=preexec_fn,
    )


def said_once(out: subprocess.CompletedProcess, *fragments: str) -> str:
    """The one error sentence of a run that stopped on a store failure."""
    told = out.stdout + out.stderr
    assert out.returncode == 2, told
    assert "Traceback" not in told and "internal error" not in told and "| ERROR" not in told, told
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, told
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0].removeprefix("error: ")


def flow_run_failed_with(config: Path) -> str:
    """The message of the (last) delivery flow run's state, from the run's own Prefect database."""
    with sqlite3.connect(config.parent / "prefect" / "prefect.db") as db:
        rows = db.execute(
            "SELECT s.type, s.message FROM flow_run f JOIN flow_run_state s ON s.id = f.state_id "
            "WHERE f.flow_id IN (SELECT id FROM flow WHERE name = 'delivery-run') "
            "ORDER BY f.created DESC"
        ).fetchall()
    assert rows and rows[0][0] == "FAILED", rows
    return rows[0][1]


def in_tmpfs(folder: Path, options: str) -> tuple[str, ...]:
    """Runs the command with a tmpfs mounted on `folder`, in a private mount namespace."""
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


def test_disk_full_while_staging(tmp_path):
    config = batch(tmp_path)
    releases = tmp_path / "releases"
    sentence = said_once(deliver(config, wrap=in_tmpfs(releases, "size=64k")), str(releases), "disk is full")
    assert "/.staging/" in sentence
    assert flow_run_failed_with(config) == sentence


def test_read_only_releases_folder(tmp_path):
    config = batch(tmp_path)
    releases = tmp_path / "releases"
    said_once(deliver(config, wrap=in_tmpfs(releases, "ro,size=1m")), str(releases), "read-only")


def test_releases_path_that_is_a_file(tmp_path):
    config = batch(tmp_path)
    releases = tmp_path / "releases"
    releases.rmdir()
    releases.write_text("not a folder")
    said_once(deliver(config), str(releases), "not a folder")


def _without_dac_override() -> None:
    if os.geteuid() != 0:  # permission bits already apply
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: root then meets permission bits
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "cannot drop a capability")


def test_unreadable_annotator_folder(tmp_path):
    config = batch(tmp_path)
    folder = tmp_path / "batch" / "annotations" / "ann_c"
    folder.chmod(0)
    try:
        said_once(deliver(config, preexec_fn=_without_dac_override), str(folder), "permission denied")
    finally:
        folder.chmod(0o755)


def _upload(folder: Path, endpoint: str, bucket: str, prefix: str) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.put_object(
            Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes()
        )


def test_source_image_replaced_after_ingest(tmp_path, s3_endpoint, s3_bucket, fault_proxy):
    config = batch(tmp_path, source=f"s3://{s3_bucket}/batch")
    _upload(tmp_path / "batch", s3_endpoint, s3_bucket, "batch")
    target = f"/{s3_bucket}/batch/images/scene_001.jpg"
    other = (tmp_path / "batch" / "images" / "scene_002.jpg").read_bytes()
    reads = []

    def replace_on_second_read(method: str, path: str) -> None:
        if method == "GET" and path.split("?", maxsplit=1)[0] == target:
            reads.append(path)
            if len(reads) == 2:  # ingest has hashed it: now someone overwrites it
                boto3.client("s3", endpoint_url=s3_endpoint).put_object(
                    Bucket=s3_bucket, Key="batch/images/scene_001.jpg", Body=other
                )

    proxy = fault_proxy(rate=0.0, hook=replace_on_second_read)
    sentence = said_once(
        deliver(config, env={"AWS_ENDPOINT_URL": proxy.url}), "scene_001.jpg", "changed after ingest"
    )
    assert flow_run_failed_with(config) == sentence
    assert not list((tmp_path / "releases").glob("demo/people-demo/v*"))  # nothing published


def test_access_denied_on_the_releases_bucket(tmp_path, s3_bucket, fault_proxy):
    config = batch(tmp_path, releases=f"s3://{s3_bucket}/releases")
    proxy = fault_proxy(
        rate=0.0, deny=lambda method, path: method in ("PUT", "POST") and "/releases/" in path
    )
    said_once(
        deliver(config, env={"AWS_ENDPOINT_URL": proxy.url}), f"s3://{s3_bucket}/releases/", "access denied"
    )


def test_no_aws_credentials(tmp_path):
    config = batch(tmp_path, releases="s3://kp-nobody/releases")
    env = {
        **dict.fromkeys(NO_AWS),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_REGION": "us-east-1",
    }
    said_once(deliver(config, env=env), "s3://kp-nobody/releases", "no AWS credentials")


def test_prefect_records_of_a_store_failure_are_left_out_and_others_kept():
    import logging
    import sys as _sys

    from kpdeliver.storage import StoreFault
    from tasks.store import StoreFailureLogs

    keep = StoreFailureLogs()
    try:
        raise StoreFault("cannot write /r/x: the disk is full (no space left on the device)", "disk full")
    except StoreFault:
        failed = logging.LogRecord(
            "prefect.task_runs",
            logging.ERROR,
            __file__,
            1,
            "Task run failed with exception: %r",
            ("StoreFault(...)",),
            _sys.exc_info(),
        )
    final = logging.LogRecord(
        "prefect.task_runs",
        logging.ERROR,
        __file__,
        1,
        "Finished in state Failed('Task run "
        "encountered an exception SourceChanged: s3://b/x changed after ingest')",
        (),
        None,
    )
    try:
        raise KeyError("a bug")
    except KeyError:
        bug = logging.LogRecord(
            "prefect.task_runs",
            logging.ERROR,
            __file__,
            1,
            "Task run failed with exception",
            (),
            _sys.exc_info(),
        )
    assert not keep.filter(failed) and not keep.filter(final)
    assert keep.filter(bug) and bug.exc_info is not None  # a bug keeps its traceback
