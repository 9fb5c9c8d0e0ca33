"""Deployment entry point: a flow that takes a client YAML path (deployments pass strings)."""
from __future__ import annotations

from prefect import flow

from flows.delivery import delivery_run
from kpdeliver.config import load_config


@flow(name="deliver-from-file")
def deliver_from_file(config_path: str) -> dict:
    return delivery_run(load_config(config_path))
