#!/usr/bin/env python3
"""Run Label Studio headless on loopback from its own venv (standard library only, so the test
fixture and the command line share it).

    python infra/label-studio/ls_server.py template [--venv .work/ls-venv] [--dir .work/ls-template]
        migrate a fresh SQLite database once (2-3 minutes) and keep it as the template
    python infra/label-studio/ls_server.py start --root BATCHES --port PORT [--data .work/ls-data]
        start on a copy of the template (about 15 s) and print the URL and token; Ctrl-C, SIGTERM,
        `stop` or the death of its parent (make) stops it
    python infra/label-studio/ls_server.py stop [--data .work/ls-data]
        stop the server `start` runs on that data folder (its pid is in <data>/ls.pid)

Known traps: without LABEL_STUDIO_BASE_DATA_DIR even `--help` writes
into the home folder; a busy port makes Label Studio move to the next one silently, so the port
is checked; the legacy token works only when the organisation was created with the legacy flag,
which the template is.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO / ".work" / "ls-venv"
DEFAULT_TEMPLATE = REPO / ".work" / "ls-template"
DB_NAME = "ls.sqlite3"
ADMIN_EMAIL = "admin@kpdeliver.local"
ADMIN_PASSWORD = "kpdeliver-admin"
ADMIN_TOKEN = "kpdeliver0000000000000000000000000000000"  # loopback test server only


@dataclass
class Server:
    url: str
    token: str
    process: subprocess.Popen
    data_dir: Path
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nothing listens on the port (connections of a server stopped a moment ago do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def install(venv: Path = DEFAULT_VENV) -> Path:
    """The venv's `label-studio`, installing it first when missing (minutes)."""
    exe = venv / "bin" / "label-studio"
    if not (exe.exists() and (venv / ".installed-stamp").exists()):
        subprocess.run(["bash", str(REPO / "infra" / "label-studio" / "install.sh"), str(venv)], check=True)
    return exe


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
            return json.loads(r.read()).get("status") == "UP"
    except (OSError, ValueError):
        return False


def start(
    data_dir: Path,
    *,
    document_root: Path,
    port: int | None = None,
    venv: Path = DEFAULT_VENV,
    timeout: float = 600.0,
    env: dict[str, str | None] | None = None,
    preexec=None,
) -> Server:
    """Start Label Studio on `data_dir` (migrating the database when it is new) and wait for /health.
    `env`: variables for the server on top of ours (None removes one)."""
    exe = install(venv)
    port = port or free_port()
    if not port_is_free(port):
        raise RuntimeError(f"port {port} is busy (Label Studio would silently move to another one)")
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    overrides, env = (
        env,
        {
            **os.environ,
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "HOME": str(data_dir),
            "LOCAL_FILES_SERVING_ENABLED": "true",
            "LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "COLLECT_ANALYTICS": "false",
            "LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        },
    )
    env.pop("PYTHONPATH", None)
    for name, value in (overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    log = data_dir / "server.log"
    process = subprocess.Popen(
        [
            str(exe),
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(port),
            "--host",
            url,
            "--data-dir",
            str(data_dir),
            "--database",
            str(data_dir / DB_NAME),
            "--username",
            ADMIN_EMAIL,
            "--password",
            ADMIN_PASSWORD,
            "--user-token",
            ADMIN_TOKEN,
            "--enable-legacy-api-token",
            "--log-level",
            "WARNING",
        ],
        env=env,
        cwd=data_dir,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec,  # noqa: PLW1509 (a parent-death signal; no threads run yet)
    )
    server = Server(url, ADMIN_TOKEN, process, data_dir, log)
    deadline = time.monotonic() + timeout
    while not _healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Label Studio did not become healthy on {url} (see {log}):\n{tail}")
        time.sleep(1)
    return server


def make_template(template: Path = DEFAULT_TEMPLATE, *, venv: Path = DEFAULT_VENV) -> Path:
    """A migrated database with the admin and its legacy token, made once and kept."""
    db = template / DB_NAME
    if (template / ".complete").exists():
        return db
    scratch = template.with_name(template.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    start(scratch, document_root=scratch, venv=venv).stop()
    shutil.rmtree(template, ignore_errors=True)
    scratch.mkdir(exist_ok=True)
    for junk in ("server.log",):
        (scratch / junk).unlink(missing_ok=True)
    (scratch / ".complete").touch()
    scratch.rename(template)
    return db


def start_from_template(
    data_dir: Path,
    *,
    document_root: Path,
    template: Path = DEFAULT_TEMPLATE,
    venv: Path = DEFAULT_VENV,
    port: int | None = None,
    env: dict[str, str | None] | None = None,
) -> Server:
    """Start on a private copy of the template database (about 15 s instead of a cold 2-3 min)."""
    db = make_template(template, venv=venv)
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, data_dir / DB_NAME)
    return start(data_dir, document_root=document_root, port=port, venv=venv, env=env)


PID_FILE = "ls.pid"


def _die_with_parent() -> None:
    """Get SIGTERM when the parent process dies (Linux), so nothing outlives whoever started it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _is_label_studio(pid: int) -> bool:
    try:
        return b"label-studio" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def serve(args: argparse.Namespace) -> None:
    """`start`: run Label Studio in the foreground until Ctrl-C, SIGTERM, `stop`, or the death of
    whoever started this (make); its pid is in <data>/ls.pid meanwhile."""
    if not args.root.is_dir():
        sys.exit(f"LS_ROOT {args.root} is not a folder")
    data = args.data.resolve()
    if not (data / DB_NAME).exists():
        make_template(args.dir.resolve(), venv=args.venv.resolve())
        data.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.dir.resolve() / DB_NAME, data / DB_NAME)
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        sys.exit("the process that started Label Studio is gone")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.default_int_handler)
    server = None
    try:
        server = start(
            data,
            document_root=args.root.resolve(),
            port=args.port,
            venv=args.venv.resolve(),
            preexec=_die_with_parent,
        )
        (data / PID_FILE).write_text(f"{server.process.pid}\n")
        print(
            f"Label Studio at {server.url}  (admin {ADMIN_EMAIL} / {ADMIN_PASSWORD}); "
            f"serves local files under {args.root.resolve()}",
            flush=True,
        )
        print(f"export LABEL_STUDIO_TOKEN={server.token}", flush=True)
        server.process.wait()
    except KeyboardInterrupt:
        pass
    except RuntimeError as e:  # a busy port, a server that never became healthy: said, no traceback
        sys.exit(str(e))
    finally:
        if server is not None:
            server.stop()
        (data / PID_FILE).unlink(missing_ok=True)


def stop(data: Path) -> None:
    """`stop`: end the Label Studio whose pid `start` wrote into <data>/ls.pid."""
    pid_file = data.resolve() / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        print(f"no Label Studio started from {data} is running (no {pid_file})")
        return
    if not _is_label_studio(pid):
        pid_file.unlink(missing_ok=True)
        print(f"process {pid} of {pid_file} is not Label Studio any more; nothing to stop")
        return
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while _is_label_studio(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _is_label_studio(pid):
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    print(f"Label Studio (pid {pid}) stopped")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("install", "template", "start", "stop"))
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    ap.add_argument("--dir", type=Path, default=DEFAULT_TEMPLATE, help="template folder")
    ap.add_argument(
        "--data", type=Path, default=REPO / ".work" / "ls-data", help="data folder of `start` and `stop`"
    )
    ap.add_argument(
        "--root", type=Path, help="LOCAL_FILES_DOCUMENT_ROOT: a folder holding the batches (start)"
    )
    ap.add_argument("--port", type=int, help="the port of tool.url (start)")
    args = ap.parse_args()
    if args.command == "install":
        print(install(args.venv))
    elif args.command == "template":
        t0 = time.monotonic()
        print(
            f"template database {make_template(args.dir.resolve(), venv=args.venv.resolve())} "
            f"ready in {time.monotonic() - t0:.0f} s"
        )
    elif args.command == "stop":
        stop(args.data)
    elif args.root is None or args.port is None:
        ap.error("start needs --root (the folder holding the batches) and --port (the port of tool.url)")
    else:
        serve(args)


if __name__ == "__main__":
    sys.exit(main())
