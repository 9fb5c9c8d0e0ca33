"""Where Label Studio reads a batch from, without a server: the S3 storage fields and their
credentials, a local batch's references, and the ls-start check of configured batches."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from kpdeliver.config import config_from_dict
from kpdeliver.tools.label_studio import ToolError
from kpdeliver.tools.label_studio.storage import LocalImages, S3Images, batch_images

BASE = {"client": "acme", "dataset": "people", "releases": "/r", "annotators": ["ann_a"]}
ROOT = Path(__file__).resolve().parents[2]


def test_an_s3_batch_is_read_from_its_images_prefix_with_the_named_credentials(monkeypatch):
    cfg = config_from_dict(
        {
            **BASE,
            "source": "s3://bkt/acme/2026-12/",
            "storage": {"region": "eu-west-1"},
            "tool": {
                "url": "http://ls:8080",
                "s3": {"access_key_env": "K", "secret_key_env": "S", "session_token_env": None},
            },
        }
    )
    images = batch_images(cfg)
    assert isinstance(images, S3Images)
    assert (images.bucket, images.prefix, images.region) == ("bkt", "acme/2026-12/images", "eu-west-1")
    assert images.ref("cam 1/a.jpg") == "s3://bkt/acme/2026-12/images/cam 1/a.jpg"
    monkeypatch.setenv("K", "key")
    monkeypatch.delenv("S", raising=False)
    with pytest.raises(ToolError, match="environment variable S is not set"):
        images.credentials()
    monkeypatch.setenv("S", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "not sent: session_token_env is null")
    assert images.credentials() == {"aws_access_key_id": "key", "aws_secret_access_key": "secret"}
    assert images.fields() == {"presign": True, "presign_ttl": 15, "region_name": "eu-west-1"}


def test_the_server_may_use_its_own_credentials():
    cfg = config_from_dict(
        {
            **BASE,
            "source": "s3://bkt",
            "tool": {
                "url": "http://ls",
                "s3": {
                    "access_key_env": None,
                    "secret_key_env": None,
                    "session_token_env": None,
                    "endpoint_url": "http://minio:9000",
                    "presign": False,
                },
            },
        }
    )
    images = batch_images(cfg)
    assert images.prefix == "images" and images.credentials() == {}
    assert images.fields() == {"presign": False, "presign_ttl": 15, "s3_endpoint": "http://minio:9000"}


def test_a_local_batch_is_referenced_under_the_document_root(tmp_path):
    cfg = config_from_dict({**BASE, "source": str(tmp_path / "acme" / "batch"), "tool": {"url": "http://ls"}})
    images = batch_images(cfg)
    assert isinstance(images, LocalImages) and images.root == tmp_path / "acme" and not images.root_given
    assert images.ref("a b.jpg") == "/data/local-files/?d=batch/images/a%20b.jpg"


def _check_root():
    spec = importlib.util.spec_from_file_location(
        "check_root", ROOT / "infra" / "label-studio" / "check_root.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ls_start_names_each_batch_outside_ls_root_and_a_port_that_is_not_ls_port(tmp_path, monkeypatch):
    problems = _check_root().problems
    (tmp_path / "srv" / "acme" / "batch").mkdir(parents=True)
    cfg = {**BASE, "source": "./acme/batch", "tool": {"url": "http://127.0.0.1:8080"}}
    path = tmp_path / "srv" / "client.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert problems(path, (tmp_path / "srv").resolve(), 8080) == []
    elsewhere = (tmp_path / "other").resolve()
    said = problems(path, elsewhere, 8081)
    assert any("tool.url http://127.0.0.1:8080 is on port 8080, not LS_PORT=8081" in p for p in said)
    assert any(
        f"{(tmp_path / 'srv' / 'acme' / 'batch').resolve()} is not under LS_ROOT={elsewhere}" in p
        for p in said
    )
    path.write_text(yaml.safe_dump({**cfg, "source": "s3://bkt/acme"}))
    assert problems(path, elsewhere, 8080) == [], "an S3 batch needs no LS_ROOT"
    path.write_text(yaml.safe_dump({k: v for k, v in cfg.items() if k != "tool"}))
    assert problems(path, elsewhere, 8081) == [], "a config without tool: is not Label Studio's"
