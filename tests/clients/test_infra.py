"""The production stack, checked at the YAML level (no docker engine here), and the per-client IAM
policies: each reaches its own client's prefixes only."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest
import yaml

from kpdeliver.clients.iam import iam_policy
from kpdeliver.config import ConfigError, config_from_dict

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "infra/compose.yaml").read_text())
SERVICES = COMPOSE["services"]
ROOT_SECRETS = {"minio_root_user", "minio_root_password"}


def test_every_image_is_pinned():
    built = {s["image"] for s in SERVICES.values() if "build" in s}  # ours, from infra/Dockerfile
    images = {name: s["image"] for name, s in SERVICES.items() if s.get("image") not in built}
    assert re.fullmatch(r"minio/minio:RELEASE\.\d{4}-\d\d-\d\dT[\d-]+Z", images["minio"])
    assert re.fullmatch(r"minio/mc:RELEASE\.\d{4}-\d\d-\d\dT[\d-]+Z", images["s3-setup"])
    assert images["prefect-server"] == "prefecthq/prefect:3.9.1-python3.11"
    for name, image in images.items():
        tag = image.partition(":")[2]
        assert tag and tag != "latest" and re.search(r"\d+\.\d+|\d{4}-\d\d-\d\d", tag), (name, image)
    assert "FROM prefecthq/prefect:3.9.1-python3.11" in (ROOT / "infra/Dockerfile").read_text()


def test_long_running_services_have_health_checks_and_start_in_order():
    for name in ("postgres", "prefect-server", "minio"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert SERVICES["prefect-server"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert SERVICES["worker"]["depends_on"] == {
        "prefect-server": {"condition": "service_healthy"},
        "minio": {"condition": "service_healthy"},
        "s3-setup": {"condition": "service_completed_successfully"},
        "register": {"condition": "service_completed_successfully"},
    }
    assert SERVICES["register"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    assert SERVICES["s3-setup"]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_register_deploys_the_mounted_client_configs_and_the_worker_reads_the_same_path():
    assert SERVICES["register"]["command"][:3] == ["kpdeliver", "deploy", "/clients"]
    for name in ("register", "worker"):
        assert "../clients:/clients:ro" in SERVICES[name]["volumes"], name
    assert (ROOT / "infra" / "../clients").resolve().is_dir()


def test_the_worker_never_holds_minio_root_credentials():
    worker = SERVICES["worker"]
    assert not ROOT_SECRETS & set(worker.get("secrets", []))
    env = json.dumps(worker.get("environment", {})) + json.dumps(worker.get("entrypoint", ""))
    assert "MINIO_ROOT" not in env and "minio_root" not in env
    assert {"worker_access_key", "worker_secret_key"} <= set(worker["secrets"])
    setup = "\n".join(SERVICES["s3-setup"]["entrypoint"])
    assert "mc admin user add" in setup and "mc admin policy attach local kpdeliver-worker" in setup
    policy = json.loads((ROOT / "infra/minio/worker-policy.json").read_text())
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert "s3:AbortMultipartUpload" in actions and not any(
        a.startswith("admin:") or a == "s3:*" for a in actions
    )
    assert not any(a in actions for a in ("s3:DeleteBucket", "s3:PutBucketPolicy"))


def test_secrets_are_files_kept_out_of_git_and_of_the_image():
    for name, spec in COMPOSE["secrets"].items():
        assert spec["file"] == f"./secrets/{name}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".work", "infra/secrets"} <= set(ignored)
    assert "*" in (ROOT / "infra/secrets/.gitignore").read_text().split()


def test_prefect_yaml_points_at_the_deployment_flow():
    spec = yaml.safe_load((ROOT / "infra/prefect.yaml").read_text())
    path, _, flow = spec["deployments"][0]["entrypoint"].partition(":")
    assert (ROOT / path).is_file() and f"def {flow}(" in (ROOT / path).read_text()


BASE = {"dataset": "pose", "annotators": ["a"], "releases": "s3://kpdeliver-releases"}


def _prefixes(policy: dict) -> set[tuple[str, str]]:
    """(bucket, prefix) of every object resource and every s3:prefix listing condition."""
    found = set()
    for s in policy["Statement"]:
        for arn in s["Resource"]:
            bucket, _, key = arn.removeprefix("arn:aws:s3:::").partition("/")
            if key:
                found.add((bucket, key.removesuffix("*")))
            else:
                conditions = s["Condition"]["StringLike"][
                    "s3:prefix"
                ]  # a bucket ARN only with a prefix condition
                found |= {(bucket, p.removesuffix("*")) for p in conditions}
    return found


@pytest.mark.parametrize(
    "sources",
    [
        ("s3://kpdeliver-batches/acme", "s3://kpdeliver-batches/globex"),
        ("s3://kpdeliver-batches/acme/2026-11", "s3://kpdeliver-batches/acme-eu/2026-11"),
    ],
)
def test_two_clients_policies_never_overlap(sources):
    policies = [
        iam_policy(config_from_dict({**BASE, "client": c, "source": s}))
        for c, s in zip(("acme", "acme-eu"), sources)
    ]
    for p in policies:
        actions = {a for s in p["Statement"] for a in s["Action"]}
        assert {"s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:ListBucket"} <= actions
        assert all("${" not in r for s in p["Statement"] for r in s["Resource"])
    for a, b in combinations([_prefixes(p) for p in policies], 2):
        for bucket, x in a:
            for other_bucket, y in b:
                if bucket == other_bucket:
                    # compare whole path segments: 'acme/' must not cover 'acme-eu/'
                    xs, ys = x.rstrip("/") + "/", y.rstrip("/") + "/"
                    assert not (xs.startswith(ys) or ys.startswith(xs)), (x, y)


def test_policy_grants_delete_only_in_staging_and_write_only_to_tasks_in_the_source():
    p = iam_policy(config_from_dict({**BASE, "client": "acme", "source": "s3://kpdeliver-batches/acme/b1"}))
    by_sid = {s["Sid"]: s for s in p["Statement"]}
    assert by_sid["CleanOwnStagingOnly"]["Resource"] == ["arn:aws:s3:::kpdeliver-releases/.staging/acme/*"]
    assert by_sid["WriteOwnTaskPackages"]["Resource"] == ["arn:aws:s3:::kpdeliver-batches/acme/b1/tasks/*"]
    assert by_sid["ReadOwnSource"]["Action"] == ["s3:GetObject"]


def test_a_whole_bucket_or_local_source_gets_no_policy():
    for source in ("s3://kpdeliver-batches", "./batch"):
        with pytest.raises(ConfigError, match="source"):
            iam_policy(config_from_dict({**BASE, "client": "acme", "source": source}))


def test_iam_command_prints_the_policy_of_the_example_config():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kpdeliver.cli import main; main()",
            "iam",
            "clients/templates/s3-client.yaml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Statement"][0]["Condition"]["StringLike"]["s3:prefix"] == [
        "example/2026-11",
        "example/2026-11/*",
    ]
