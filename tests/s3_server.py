"""pytest plugin: a real S3 API server (moto_server) on loopback for the session, and a
fault-injecting HTTP proxy in front of it.

Nothing reaches the internet: the server listens on 127.0.0.1, boto3 is pointed at it through
AWS_ENDPOINT_URL, credentials are dummies, and shared AWS config files and the instance
metadata service are switched off for the session.
"""

from __future__ import annotations

import http.client
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_command(port: int) -> list[str]:
    exe = Path(sys.executable).with_name("moto_server")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    return [*base, "-H", "127.0.0.1", "-p", str(port)]


def _die_with_parent() -> None:
    """In the child: get SIGTERM if pytest dies, so no server outlives an aborted session (Linux)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def wait_healthy(endpoint: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto_server at {endpoint} not healthy after {timeout:.0f} s")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """Start moto_server on a free loopback port; yield its URL with the AWS environment
    pointing at it; stop it at the end of the session."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("moto") / "moto_server.log").open("wb")
    proc = subprocess.Popen(
        moto_command(port),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **DUMMY_AWS_ENV},
        preexec_fn=_die_with_parent,
    )
    mp = pytest.MonkeyPatch()
    try:
        wait_healthy(endpoint, proc)
        mp.delenv("AWS_PROFILE", raising=False)
        for k, v in {**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL": endpoint}.items():
            mp.setenv(k, v)
        yield endpoint
    finally:
        mp.undo()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def make_bucket(endpoint: str) -> str:
    import boto3

    name = f"kp-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    """A fresh, empty bucket on the session's server."""
    return make_bucket(s3_endpoint)


# --------------------------------------------------------------------------- fault proxy

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}
_ERRORS = {
    500: b"<Error><Code>InternalError</Code><Message>injected fault</Message></Error>",
    503: b"<Error><Code>SlowDown</Code><Message>injected fault</Message></Error>",
    403: b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # clients killed on purpose
            super().handle_error(request, client_address)


class FaultProxy:
    """A loopback HTTP proxy in front of an S3 endpoint that makes a fraction of requests fail.

    Faults, drawn with a seeded generator: `500` / `503` answered without reaching the server;
    `drop` closes the connection before forwarding; `drop_after` forwards the request (the
    server applies it) and closes the connection before the response — the nastiest case for a
    conditional write. `corrupt_gets` flips one byte of that fraction of object bodies; `first`
    scripts the faults of the first requests; `hook(method, path)` sees every request first
    (to count, hold or kill a client at a chosen request); `deny(method, path)` true answers 403
    AccessDenied without reaching the server (a bucket policy refusing those requests).
    """

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.2,
        seed: int = 0,
        kinds: tuple[str, ...] = ("500", "503", "drop", "drop_after"),
        corrupt_gets: float = 0.0,
        first: tuple[str, ...] = (),
        hook=None,
        deny=None,
    ) -> None:
        self.upstream = http.client.urlsplit(upstream).netloc
        self.rate, self.kinds, self.corrupt_gets = rate, kinds, corrupt_gets
        self.first = list(first)  # faults for the first requests, in order, before the random ones
        self.hook = hook  # called as hook(method, path) before each request is forwarded
        self.deny = deny
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stats: Counter = Counter()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def draw(self, method: str) -> str | None:
        with self.lock:
            self.stats["requests"] += 1
            if self.first:
                kind = self.first.pop(0)
                self.stats[kind] += 1
                return kind
            if self.rng.random() < self.rate:
                kind = self.rng.choice(self.kinds)
                self.stats[kind] += 1
                return kind
            if method == "GET" and self.corrupt_gets and self.rng.random() < self.corrupt_gets:
                self.stats["corrupt"] += 1
                return "corrupt"
        return None

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _drop(self) -> None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def _relay(self) -> None:
                body = self._body()
                if proxy.hook:
                    proxy.hook(self.command, self.path)
                fault = (
                    "403" if proxy.deny and proxy.deny(self.command, self.path) else proxy.draw(self.command)
                )
                if fault in ("500", "503", "403"):
                    msg = _ERRORS[int(fault)]
                    self.send_response(int(fault))
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                if fault == "drop":
                    return self._drop()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                if fault == "drop_after":
                    return self._drop()
                if fault == "corrupt" and resp.status == 200 and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                length = resp.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        return Handler


@pytest.fixture
def fault_proxy(s3_endpoint):
    """Factory: `fault_proxy(rate=0.2, seed=1, kinds=(...))` -> a running FaultProxy."""
    started: list[FaultProxy] = []

    def make(**kwargs) -> FaultProxy:
        p = FaultProxy(s3_endpoint, **kwargs).__enter__()
        started.append(p)
        return p

    yield make
    for p in started:
        p.__exit__()
