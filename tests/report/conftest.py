"""A small demo release built through the delivery's own tasks (`task.fn()`, local folders): its
report is what the tests in this folder read, render and look at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from kpdeliver.config import ClientConfig, load_config
from kpdeliver.release.package import ReleasePlan
from kpdeliver.synth import make_demo_batch
from tests.release_helpers import package_demo


@dataclass
class DemoRelease:
    root: Path
    config: ClientConfig
    plan: ReleasePlan
    findings: object  # pa.Table
    html: str


@pytest.fixture(scope="session")
def demo_release(tmp_path_factory) -> DemoRelease:
    root = tmp_path_factory.mktemp("report-demo")
    config = load_config(make_demo_batch(root, seed=3, n_images=14))
    plan, findings = package_demo(config)
    return DemoRelease(root, config, plan, findings, plan.files["qa/report.html"].decode())
