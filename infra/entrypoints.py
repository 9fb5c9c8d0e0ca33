"""Deployment entry point: a flow that takes a client YAML path (deployments pass strings)."""
from __future__ import annotations

from prefect import flow

from flows.delivery import delivery_run
from kpdeliver.isolation import load_isolated_config


@flow(name="deliver-from-file")
def deliver_from_file(config_path: str) -> dict:
    """Refuses (IsolationError, before any read or write) a config whose locations reach into
    those of a client configured beside it."""
    return delivery_run(load_isolated_config(config_path))
