"""Client isolation: whose prefixes a location reaches.

A client owns three prefixes: its batch (`source`), its release folder (`<releases>/<client>`)
and its staging folder (`<releases>/.staging/<client>`). A run is refused when one of them
equals, contains or lies inside a prefix another client owns, so one client's run can neither
read nor write another client's data. Locations are compared by what they resolve to, not by
their spelling: a local path through its links; an S3 location by the server boto3 would reach
(the configured or environment endpoint, its host resolved once, every loopback form as one,
default ports filled in), the bucket and the prefix without empty parts.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kpdeliver.bounded import CONFIG_MAX_BYTES, BoundsError, NotRegular, TooLarge, read_yaml
from kpdeliver.config import ClientConfig, ConfigError, StorageOptions, load_config, plural, problems_error
from kpdeliver.preflight import STAGING
from kpdeliver.storage import StorageError, open_store


class IsolationError(ConfigError):
    """The config reaches into another client's prefix."""


class NeighbourConfigWarning(UserWarning):
    """A config beside the one being run cannot be read; it is left out of the isolation check."""


@dataclass(frozen=True)
class Place:
    """A location reduced to what decides overlap."""

    scheme: str  # "file" or "s3"
    server: frozenset[str]  # S3: the addresses:port the endpoint reaches ("aws" for AWS); empty for files
    bucket: str
    parts: tuple[str, ...]
    text: str

    def overlaps(self, other: Place) -> bool:
        n = min(len(self.parts), len(other.parts))
        same_server = self.scheme == "file" or bool(self.server & other.server)
        return (
            (self.scheme, self.bucket) == (other.scheme, other.bucket)
            and same_server
            and self.parts[:n] == other.parts[:n]
        )


@cache
def _local_addresses() -> frozenset[str]:
    """This machine's own addresses: an endpoint on any of them is the local server."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return frozenset()
    return frozenset(_address(str(info[4][0])) for info in infos)


def _address(text: str) -> str:
    ip = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return "loopback" if ip.is_loopback or ip.is_unspecified else str(ip)


@cache
def _host_addresses(host: str) -> frozenset[str]:
    """Every address `host` resolves to, loopback forms ('localhost', 127.1, [::1]) as one."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return frozenset({host})  # unresolvable now: compare by name
    found = {_address(str(info[4][0])) for info in infos}
    return frozenset("loopback" if a in _local_addresses() else a for a in found)


@cache
def _s3_endpoint(options: tuple, env: tuple) -> str:
    """The endpoint URL boto3 would use (config, environment or profile); `env` keys the cache."""
    try:
        probe: Any = open_store("s3://isolation-probe", dict(options))  # an S3Store: its boto3 client
        return probe.client.meta.endpoint_url
    except StorageError as e:
        raise IsolationError(f"cannot tell which S3 server is meant: {e}") from None


def server_identity(storage: StorageOptions) -> frozenset[str]:
    options = tuple(
        sorted(storage.model_dump(exclude_none=True, include={"endpoint_url", "region", "profile"}).items())
    )
    env = tuple(
        os.environ.get(k)
        for k in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE")
    )
    url = _s3_endpoint(options, env)
    u = urlsplit(url if "://" in url else f"https://{url}")
    host = (u.hostname or "").lower().rstrip(".")
    if host == "amazonaws.com" or host.endswith(".amazonaws.com"):
        return frozenset({"aws"})  # bucket names are global across AWS regions
    try:
        port = u.port or (443 if u.scheme == "https" else 80)
    except ValueError:
        raise IsolationError(f"S3 endpoint {url!r} has an invalid port") from None
    return frozenset(f"{a}:{port}" for a in _host_addresses(host))


def place(location: str, *, storage: StorageOptions | None = None, sub: str = "") -> Place:
    """The canonical place of a local path, file:// or s3:// location (plus an optional sub-folder)."""
    if location.startswith("s3://"):
        u = urlsplit(location)
        parts = tuple(p for p in f"{u.path}/{sub}".split("/") if p)
        if any(p in (".", "..") for p in parts):
            raise IsolationError(f"S3 location {location} holds a '.' or '..' part; give the prefix plainly")
        bucket = u.netloc.lower()
        return Place(
            "s3",
            server_identity(storage or StorageOptions()),
            bucket,
            parts,
            f"s3://{bucket}/{'/'.join(parts)}".rstrip("/"),
        )
    path = (Path(location.removeprefix("file://")).expanduser() / sub).resolve()  # through every link
    return Place("file", frozenset(), "", path.parts, str(path))


def owned_places(config: ClientConfig) -> dict[str, Place]:
    return {
        "source": place(config.source, storage=config.storage),
        "release folder": place(config.releases, storage=config.storage, sub=config.client),
        "staging folder": place(config.releases, storage=config.storage, sub=f"{STAGING}/{config.client}"),
    }


def isolation_problems(config: ClientConfig, others: Iterable[ClientConfig]) -> list[str]:
    """Plain sentences, one per overlap between `config`'s prefixes and other clients'."""
    mine = owned_places(config)
    problems = []
    for other in others:
        if other.client == config.client:
            continue
        for what, p in mine.items():
            for their_what, q in owned_places(other).items():
                if p.overlaps(q):
                    problems.append(
                        f"client {config.client!r}: {what} {p.text} overlaps the {their_what} "
                        f"{q.text} of client {other.client!r}"
                    )
    return problems


def check_isolation(config: ClientConfig, others: Iterable[ClientConfig]) -> None:
    """Raise IsolationError (a ConfigError) if `config` reaches into another client's prefixes."""
    problems = isolation_problems(config, others)
    if problems:
        error = problems_error(f"client {config.client!r}", problems, lead="refusing to run: ")
        raise IsolationError(str(error), error.problems)


def configs_beside(config_path: str | Path) -> list[ClientConfig]:
    """The other client configs in the same folder as `config_path` (YAML files with a `client`
    key), so `deliver --config clients/acme.yaml` can be checked against its neighbours. A broken
    neighbour is another client's problem: it is left out with a NeighbourConfigWarning naming it,
    never a failure of this client."""
    import warnings

    here = Path(config_path).resolve()
    out = []
    for p in sorted(here.parent.glob("*.y*ml")):
        if p.resolve() == here:
            continue
        try:  # bounded: a huge file or a FIFO beside the config never delays this client's check
            doc = read_yaml(p, what="config file", limit=CONFIG_MAX_BYTES)
        except (NotRegular, TooLarge) as e:
            warnings.warn(
                NeighbourConfigWarning(f"{p} is left out of the isolation check: {e.problem}"), stacklevel=2
            )
            continue
        except BoundsError:
            continue  # not a client config; load_config would say why if it were used as one
        if isinstance(doc, dict) and "client" in doc:
            try:
                out.append(load_config(p))
            except ConfigError as e:
                warnings.warn(
                    NeighbourConfigWarning(
                        f"{p} is left out of the isolation check: it is not a usable client config "
                        f"({plural(len(e.problems), 'problem')}: {'; '.join(e.problems)})"
                    ),
                    stacklevel=2,
                )
    return out


def load_isolated_config(config_path: str | Path) -> ClientConfig:
    """The client config at `config_path`, refused (IsolationError) if its locations reach into
    those of a client configured beside it. Every command that touches a client's locations
    loads its config through here."""
    config = load_config(config_path)
    check_isolation(config, configs_beside(config_path))
    return config
