"""`check` is the pre-flight: what a run needs is proved before it starts, and `deliver` runs the
same check before Prefect starts. A releases location that takes no write, an annotator's folder
or a source image that cannot be read, an S3 bucket that denies the write, and missing AWS
credentials are each one sentence naming the location, exit 2, from `check` and from `deliver`.

Tests run as root, which ignores permission bits: the permission cases run the CLI without
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (tests/config/clients.py), so a chmod holds for it as for
any user. Cases that fail for root as it is: a releases path that is a regular file, and one on
/proc, which takes no new folders."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.config.clients import GOOD, assert_refused, assert_usable, kpdeliver, make_clients
from tests.s3_server import DUMMY_AWS_ENV


@pytest.fixture
def clients(tmp_path: Path) -> Path:
    return make_clients(tmp_path)


def refused_by_check_and_deliver(clients: Path, *fragments: str, permission_bits: bool = False) -> None:
    assert_refused(kpdeliver("check", "acme.yaml", cwd=clients, permission_bits=permission_bits), *fragments)
    work = clients / "work"
    out = kpdeliver(
        "deliver", "--config", "acme.yaml", "--work", str(work), cwd=clients, permission_bits=permission_bits
    )
    assert_refused(out, *fragments)
    assert not (work / ".prefect").exists()  # refused before Prefect was configured


def no_write(clients: Path, how: str) -> str:
    if how == "a regular file":
        (clients / "releases").write_text("not a folder")
        return str(clients / "releases")
    if how == "a read-only folder":
        (clients / "releases").mkdir()
        (clients / "releases").chmod(0o555)
        return str(clients / "releases")
    (clients / "acme.yaml").write_text(GOOD.replace("./releases", "/proc/kpdeliver-releases"))
    return "/proc/kpdeliver-releases"


@pytest.mark.parametrize("how", ["a regular file", "a read-only folder", "on /proc"])
def test_releases_that_take_no_write_are_refused_before_the_run(clients, how):
    where = no_write(clients, how)
    refused_by_check_and_deliver(
        clients,
        "field 'releases'",
        where,
        "does not take a write",
        permission_bits=how == "a read-only folder",
    )


def test_an_unreadable_annotator_folder_is_named(clients):
    (clients / "batch" / "annotations" / "ann_b").chmod(0)
    try:
        refused_by_check_and_deliver(
            clients, "field 'annotators'", "ann_b", "permission denied", permission_bits=True
        )
    finally:
        (clients / "batch" / "annotations" / "ann_b").chmod(0o755)


def test_an_unreadable_export_is_named(clients):
    (clients / "batch" / "annotations" / "ann_a" / "export.json").chmod(0)
    refused_by_check_and_deliver(clients, "field 'annotators'", "ann_a", "export.json", permission_bits=True)


def test_an_unreadable_source_image_is_named(clients):
    (clients / "batch" / "images" / "img_0001.jpg").chmod(0)
    refused_by_check_and_deliver(clients, "field 'source'", "img_0001.jpg", permission_bits=True)


@pytest.mark.parametrize("before", ["absent", "absent two levels deep", "with a release"])
def test_the_probe_leaves_the_releases_location_as_it_was(clients, before):
    if before == "absent two levels deep":
        (clients / "acme.yaml").write_text(GOOD.replace("./releases", "./out/releases"))
    if before == "with a release":
        (clients / "releases" / "acme" / "pose-2026" / "v0001").mkdir(parents=True)
        (clients / "releases" / "acme" / "pose-2026" / "v0001" / "manifest.json").write_text("{}")
    listing = sorted(p.relative_to(clients) for p in clients.rglob("*"))
    assert_usable(kpdeliver("check", "acme.yaml", cwd=clients))
    assert sorted(p.relative_to(clients) for p in clients.rglob("*")) == listing


# --------------------------------------------------------------------------- S3 (moto server)


def s3_clients(tmp_path: Path, releases: str) -> Path:
    clients = make_clients(tmp_path)
    (clients / "acme.yaml").write_text(GOOD.replace("./releases", releases))
    return clients


def test_a_releases_bucket_that_denies_the_write_is_refused(tmp_path, s3_endpoint, s3_bucket):
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{s3_bucket}/*",
            }
        ],
    }
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.put_bucket_policy(Bucket=s3_bucket, Policy=json.dumps(policy))
    with pytest.raises(s3.exceptions.ClientError):  # the server enforces the policy: what the test relies on
        s3.put_object(Bucket=s3_bucket, Key="x", Body=b"")
    clients = s3_clients(tmp_path, f"s3://{s3_bucket}/releases")
    env = {**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL": s3_endpoint}
    assert_refused(
        kpdeliver("check", "acme.yaml", cwd=clients, env=env),
        "field 'releases'",
        f"s3://{s3_bucket}/releases",
        "access denied",
    )


def test_a_missing_releases_bucket_is_refused(tmp_path, s3_endpoint):
    clients = s3_clients(tmp_path, "s3://kp-no-such-bucket/releases")
    env = {**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL": s3_endpoint}
    assert_refused(
        kpdeliver("check", "acme.yaml", cwd=clients, env=env),
        "field 'releases'",
        "kp-no-such-bucket",
        "does not exist",
    )


def test_missing_aws_credentials_are_refused_before_the_run(tmp_path, s3_endpoint, s3_bucket):
    clients = s3_clients(tmp_path, f"s3://{s3_bucket}/releases")
    env = {
        k: v
        for k, v in DUMMY_AWS_ENV.items()
        if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION"))
    }
    env["AWS_ENDPOINT_URL"] = s3_endpoint
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)
    refused_by_check_and_deliver(clients, "field 'releases'", "no AWS credentials")
    assert_usable(kpdeliver("check", "acme.yaml", cwd=clients, env={**env, **DUMMY_AWS_ENV}))
