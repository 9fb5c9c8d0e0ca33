#!/usr/bin/env python3
"""Run Label Studio headless on loopback from its own venv (standard library only, so the test
fixture and the command line share it).

    python infra/label-studio/ls_server.py template [--venv .work/ls-venv] [--dir .work/ls-template]
        migrate a fresh SQLite database once (2-3 minutes) and keep it as the template
    python infra/label-studio/ls_server.py start --root BATCHES [--port 8080]
        start on a copy of the template (about 15 s) and print the URL and token; Ctrl-C stops it

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
    with socket.socket() as s:
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


def start(data_dir: Path, *, document_root: Path, port: int | None = None, venv: Path = DEFAULT_VENV,
          timeout: float = 600.0) -> Server:
    """Start Label Studio on `data_dir` (migrating the database when it is new) and wait for /health."""
    exe = install(venv)
    port = port or free_port()
    if not port_is_free(port):
        raise RuntimeError(f"port {port} is busy (Label Studio would silently move to another one)")
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "HOME": str(data_dir),
           "LOCAL_FILES_SERVING_ENABLED": "true", "LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
           "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false",
           "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
    env.pop("PYTHONPATH", None)
    log = data_dir / "server.log"
    process = subprocess.Popen(
        [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port), "--host", url,
         "--data-dir", str(data_dir), "--database", str(data_dir / DB_NAME), "--username", ADMIN_EMAIL,
         "--password", ADMIN_PASSWORD, "--user-token", ADMIN_TOKEN, "--enable-legacy-api-token",
         "--log-level", "WARNING"],
        env=env, cwd=data_dir, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
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


def start_from_template(data_dir: Path, *, document_root: Path, template: Path = DEFAULT_TEMPLATE,
                        venv: Path = DEFAULT_VENV, port: int | None = None) -> Server:
    """Start on a private copy of the template database (about 15 s instead of a cold 2-3 min)."""
    db = make_template(template, venv=venv)
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, data_dir / DB_NAME)
    return start(data_dir, document_root=document_root, port=port, venv=venv)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("install", "template", "start"))
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    ap.add_argument("--dir", type=Path, default=DEFAULT_TEMPLATE, help="template folder")
    ap.add_argument("--data", type=Path, default=REPO / ".work" / "ls-data", help="data folder of `start`")
    ap.add_argument("--root", type=Path, default=Path.cwd(), help="LOCAL_FILES_DOCUMENT_ROOT: the batches' parent")
    ap.add_argument("--port", type=int, default=8080)
    args = ap.parse_args()
    if args.command == "install":
        print(install(args.venv))
        return
    if args.command == "template":
        t0 = time.monotonic()
        print(f"template database {make_template(args.dir.resolve(), venv=args.venv.resolve())} "
              f"ready in {time.monotonic() - t0:.0f} s")
        return
    data = args.data.resolve()
    if not (data / DB_NAME).exists():
        make_template(args.dir.resolve(), venv=args.venv.resolve())
        data.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.dir.resolve() / DB_NAME, data / DB_NAME)
    server = start(data, document_root=args.root.resolve(), port=args.port, venv=args.venv.resolve())
    print(f"Label Studio at {server.url}  (admin {ADMIN_EMAIL} / {ADMIN_PASSWORD})")
    print(f"export LABEL_STUDIO_TOKEN={server.token}")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
