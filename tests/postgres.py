"""A throwaway PostgreSQL cluster for a test: Debian's `postgresql` (infra/ci/install-postgresql.sh,
`make test-deps`), initialised in a temporary folder, listening on a loopback port and a socket in
that folder, trusted for the local user only, removed afterwards. PostgreSQL refuses to run as
root: as root the cluster belongs to the `postgres` system user the Debian package creates."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.s3_server import free_port

INSTALL = "infra/ci/install-postgresql.sh (make test-deps)"


def server_bin() -> Path:
    """The newest installed server's bin folder (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        pytest.fail(f"PostgreSQL's server is not installed: run {INSTALL}")
    return found[-1].parent


def _owner() -> tuple[int, int] | None:
    """The uid and gid the cluster runs as when this process is root; None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(f"running as root needs the postgres system user: run {INSTALL}")
    return user.pw_uid, user.pw_gid


def _run(args: list[str], owner: tuple[int, int] | None, **kwargs) -> subprocess.CompletedProcess:
    def drop() -> None:
        if owner is not None:
            os.setgid(owner[1])
            os.setuid(owner[0])

    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    if owner is not None:
        env["HOME"] = "/tmp"
    out = subprocess.run(
        args, check=False, preexec_fn=drop, env=env, capture_output=True, text=True, timeout=120, **kwargs
    )
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({out.returncode}): {out.stdout}{out.stderr}")
    return out


@contextmanager
def cluster(database: str = "prefect", user: str = "prefect") -> Iterator[str]:
    """A running cluster with `database` owned by `user`; its SQLAlchemy asyncpg URL."""
    bin_dir, owner = server_bin(), _owner()
    root = Path(tempfile.mkdtemp(prefix="kpdeliver-pg-"))  # /tmp itself: the postgres user must reach it
    data, port = root / "data", free_port()
    if owner is not None:
        os.chown(root, *owner)
    try:
        _run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"],
            owner,
        )
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off",
                "start",
            ],
            owner,
        )
        try:
            _run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database], owner)
            yield f"postgresql+asyncpg://{user}@127.0.0.1:{port}/{database}"
        finally:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], owner)
    finally:
        shutil.rmtree(root, ignore_errors=True)
