"""The task runner a client config's `runner:` section names, and the one Prefect API its flow
and workers report to."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": settings.workers or 2,
            "processes": True,
            "threads_per_worker": settings.threads_per_worker,
            "dashboard_address": None,
        },
    )


@contextmanager
def one_prefect_api(settings: RunnerSettings) -> Iterator[None]:
    """With no Prefect API configured, start this run's own temporary server and point the flow
    (and any Dask worker process, which would otherwise start one each) at it.

    Prefect's ephemeral server picks a random port, checks it is free and then starts: two runs
    started together could pick the same one, and a run whose server lost the race then talked
    to its neighbour's server until that one stopped (ConnectError). Here the port is bound
    first, by this process, and handed to the server as a listening socket, so no other run can
    take it. Servers start one at a time (the first creates the Prefect home's database) and
    then share that database."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    with _server(Path(PREFECT_HOME.value())) as url:
        before = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url  # for worker processes that read the environment
        try:
            with temporary_settings({PREFECT_API_URL: url}):
                yield
        finally:
            if before is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = before


@contextmanager
def _one_start_at_a_time(home: Path) -> Iterator[None]:
    """Held while a server starts: it creates or migrates the Prefect home's database, which two
    servers starting together would both do (and fail); servers once started share it."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "kpdeliver-api.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


@contextmanager
def _server(home: Path) -> Iterator[str]:
    """A Prefect API server on a port this process bound, with the database of `home`; its API URL."""
    import prefect

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }  # a run's own server sends no telemetry
    env.pop("PREFECT_API_URL", None)
    with _one_start_at_a_time(home):
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(prefect.__module_path__.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--fd",
                str(sock.fileno()),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
            pass_fds=(sock.fileno(),),
        )
        sock.close()  # the server holds it now
        try:
            _wait_healthy(server, url)
        except BaseException:
            _stop(server)
            raise
    try:
        yield url
    finally:
        _stop(server)


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _wait_healthy(server: subprocess.Popen, url: str) -> None:
    import httpx
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    deadline = time.monotonic() + PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
    with httpx.Client(trust_env=False) as client:  # loopback: never through a proxy
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the temporary Prefect API server exited with code {server.returncode}")
            try:
                if client.get(f"{url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(
        "the temporary Prefect API server did not answer within "
        f"{PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()} s"
    )
