"""The task runner a client config's `runner:` section names, and the one Prefect API its
workers report to."""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Iterator

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from kpdeliver.runner_settings import RunnerKind, RunnerSettings


def task_runner_for(settings: RunnerSettings) -> TaskRunner:
    if settings.kind is RunnerKind.threads:
        # one task per core by default: the shards are CPU and file-system work, and more threads
        # than cores only contend for the GIL and the kernel's folder locks (5k images: 26 -> 14 s of CPU)
        return ThreadPoolTaskRunner(max_workers=settings.max_workers or os.cpu_count() or 2)
    from prefect_dask import DaskTaskRunner  # dask only when a config asks for it

    if settings.address:
        return DaskTaskRunner(address=settings.address)
    logging.getLogger("distributed").setLevel(logging.WARNING)  # the scheduler runs in this process
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={
        "n_workers": settings.workers or 2, "processes": True, "threads_per_worker": settings.threads_per_worker,
        "dashboard_address": None})


@contextmanager
def one_prefect_api(settings: RunnerSettings) -> Iterator[None]:
    """With no Prefect API configured, every Dask worker process would start its own temporary
    server: start the temporary server here and point the flow and its workers at it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if settings.kind is RunnerKind.threads or PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the instance Prefect's own ephemeral mode would use
    server.start()
    before = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url  # for worker processes that read the environment
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = before
