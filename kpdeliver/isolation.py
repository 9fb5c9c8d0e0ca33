"""Client isolation.

A client owns three prefixes: its batch (`source`), its release folder (`<releases>/<client>`)
and its staging folder (`<releases>/.staging/<client>`). A run is refused when one of them
equals, contains or lies inside a prefix another client owns, so one client's run can neither
read nor write another client's data. Locations are compared by what they resolve to, not by
their spelling: a local path through its links; an S3 location by the server boto3 would reach
(the configured or environment endpoint, its host resolved once, every loopback form as one,
default ports filled in), the bucket and the prefix without empty parts.

Object keys and `file_name`s that would climb out of their prefix (`..`, absolute paths) or hold
control characters are refused with an `ingest.unsafe_key` finding naming them.
"""
from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.bounded import CONFIG_MAX_BYTES, BoundsError, NotRegular, TooLarge, read_yaml
from kpdeliver.config import ClientConfig, ConfigError, StorageOptions, load_config, plural, problems_error
from kpdeliver.findings import findings_for
from kpdeliver.preflight import STAGING, batch_problems, preflight_problems
from kpdeliver.storage import StorageError, join_key, open_store


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

    def overlaps(self, other: "Place") -> bool:
        n = min(len(self.parts), len(other.parts))
        same_server = self.scheme == "file" or bool(self.server & other.server)
        return (self.scheme, self.bucket) == (other.scheme, other.bucket) and same_server \
            and self.parts[:n] == other.parts[:n]


@lru_cache(maxsize=None)
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


@lru_cache(maxsize=None)
def _host_addresses(host: str) -> frozenset[str]:
    """Every address `host` resolves to, loopback forms ('localhost', 127.1, [::1]) as one."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return frozenset({host})  # unresolvable now: compare by name
    found = {_address(str(info[4][0])) for info in infos}
    return frozenset("loopback" if a in _local_addresses() else a for a in found)


@lru_cache(maxsize=None)
def _s3_endpoint(options: tuple, env: tuple) -> str:
    """The endpoint URL boto3 would use (config, environment or profile); `env` keys the cache."""
    try:
        probe: Any = open_store("s3://isolation-probe", dict(options))  # an S3Store: its boto3 client
        return probe.client.meta.endpoint_url
    except StorageError as e:
        raise IsolationError(f"cannot tell which S3 server is meant: {e}") from None


def server_identity(storage: StorageOptions) -> frozenset[str]:
    options = tuple(sorted(storage.model_dump(exclude_none=True, include={"endpoint_url", "region", "profile"}).items()))
    env = tuple(os.environ.get(k) for k in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE"))
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
        return Place("s3", server_identity(storage or StorageOptions()), bucket, parts,
                     f"s3://{bucket}/{'/'.join(parts)}".rstrip("/"))
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
                    problems.append(f"client {config.client!r}: {what} {p.text} overlaps the {their_what} "
                                    f"{q.text} of client {other.client!r}")
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
            warnings.warn(NeighbourConfigWarning(f"{p} is left out of the isolation check: {e.problem}"), stacklevel=2)
            continue
        except BoundsError:
            continue  # not a client config; load_config would say why if it were used as one
        if isinstance(doc, dict) and "client" in doc:
            try:
                out.append(load_config(p))
            except ConfigError as e:
                warnings.warn(NeighbourConfigWarning(
                    f"{p} is left out of the isolation check: it is not a usable client config "
                    f"({plural(len(e.problems), 'problem')}: {'; '.join(e.problems)})"), stacklevel=2)
    return out


def load_isolated_config(config_path: str | Path) -> ClientConfig:
    """The client config at `config_path`, refused (IsolationError) if its locations reach into
    those of a client configured beside it. Every command that touches a client's locations
    loads its config through here."""
    config = load_config(config_path)
    check_isolation(config, configs_beside(config_path))
    return config


def _unloadable_source_problems(config_path: Path, error: ConfigError) -> list[str]:
    """The batch problems of a config that failed validation elsewhere, so one message lists them
    too: read from the raw YAML when its source, storage and gold fields are themselves sound."""
    if any(p.startswith(("field 'source'", "field 'storage", "field 'assignment")) or not p.startswith("field")
           for p in error.problems):
        return []
    try:
        raw = read_yaml(config_path, what="config file", limit=CONFIG_MAX_BYTES)
    except BoundsError:  # changed since it was loaded
        return []
    source, gold = raw.get("source"), (raw.get("assignment") or {}).get("gold", [])
    if not isinstance(source, str) or not isinstance(gold, list):
        return []
    if "://" not in source and not Path(source).is_absolute():
        source = str((config_path.parent / source).resolve())
    options = StorageOptions.model_validate(raw.get("storage") or {}).model_dump(exclude_none=True)
    return batch_problems(source, options, [str(g) for g in gold])


@dataclass
class ConfigCheck:
    """Everything wrong with one client config, found before any run starts."""

    path: str
    config: ClientConfig | None
    problems: list[str]
    warnings: list[str]
    overlaps: bool = False  # some problem is an overlap with another client's prefixes

    def config_or_raise(self) -> ClientConfig:
        if self.problems or self.config is None:
            error = problems_error(self.path, self.problems, lead="refusing to run: " if self.overlaps else "")
            raise (IsolationError(str(error), error.problems) if self.overlaps else error)
        return self.config


def check_config(config_path: str | Path, *, source: bool = True) -> ConfigCheck:
    """Load the config at `config_path` and check it completely: every field problem, every overlap
    with a neighbour's prefixes and (with `source`) the pre-flight of `kpdeliver.preflight`: schema
    file, source, gold names, annotators' exports, a write to the releases location. Warnings
    (deprecated keys, unreadable neighbours) are collected, not raised."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            config = load_config(config_path)
        except ConfigError as e:
            extra = _unloadable_source_problems(Path(config_path), e) if source else []
            return ConfigCheck(str(config_path), None, e.problems + extra, [str(w.message) for w in caught])
        others = configs_beside(config_path)
    overlaps = isolation_problems(config, others)
    problems = overlaps + (preflight_problems(config) if source else [])
    return ConfigCheck(str(config_path), config, problems, [str(w.message) for w in caught], bool(overlaps))


# --------------------------------------------------------------------------- unsafe keys

# The same rules as kpdeliver.storage.base.check_key, a whole column at a time.
_RULES = (
    (r"[\x00-\x1f\x7f]", "holds control characters"),
    (r"^(?:[/\\]|[A-Za-z]:[/\\])", "is an absolute path"),
    (r"(?:^|[/\\])\.\.(?:[/\\]|$)", "climbs out of its prefix ('..')"),
)


def unsafe_reasons(keys: Sequence[str | None] | pa.Array) -> np.ndarray:
    """Per key, why it is unsafe ('' when it is safe). Vectorised over the column."""
    arr = pa.array(keys, pa.string()) if not isinstance(keys, pa.Array) else keys.cast(pa.string())
    reasons = np.full(len(arr), "", dtype=object)
    empty = pc.fill_null(pc.equal(pc.utf8_length(arr), 0), True).to_numpy(zero_copy_only=False)
    reasons[empty] = "is empty"
    for pattern, why in _RULES:
        hit = pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(zero_copy_only=False)
        reasons[hit & (reasons == "")] = why
    return reasons


def unsafe_key_findings(keys: Sequence[str | None] | pa.Array, *, location: str = "", what: str = "key") -> pa.Table:
    """`ingest.unsafe_key` findings for the unsafe ones among `keys` (a key or file_name column)."""
    keys = keys.to_pylist() if isinstance(keys, pa.Array) else list(keys)
    reasons = unsafe_reasons(keys)
    bad = np.flatnonzero(reasons != "")
    names = [keys[i] for i in bad.tolist()]
    where = f" under {location}" if location else ""
    messages = [f"{what} {k!r}{where} {r}; refused" for k, r in zip(names, reasons[bad].tolist())]
    return findings_for("ingest.unsafe_key", message=messages, file_name=names, source=names, n=len(bad))


# --------------------------------------------------------------------------- per-client S3 policy

def _s3_parts(location: str, what: str) -> tuple[str, str]:
    if not location.startswith("s3://"):
        raise ConfigError(f"field '{what}': {location} is not on S3; an IAM policy covers s3:// locations only")
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    return bucket, "/".join(p for p in prefix.split("/") if p)


def iam_policy(config: ClientConfig) -> dict:
    """The least S3 access one client's runs need, and nothing outside its prefixes: its source read
    (plus `tasks/` written, for task packages), its release and staging folders read and written
    (deleting only in staging: a published release is immutable). Listing is allowed on these
    prefixes only (s3:prefix condition); multipart uploads (16 MiB and more) can be aborted."""
    src_bucket, src = _s3_parts(config.source, "source")
    rel_bucket, rel = _s3_parts(config.releases, "releases")
    if not src:
        raise ConfigError(f"field 'source': {config.source} is a whole bucket; give the client's batch prefix "
                          "inside it, or its policy would reach other clients' batches")
    client = config.client
    releases = join_key(rel, client)
    staging = join_key(rel, STAGING, client)

    def objects(bucket: str, *prefixes: str) -> list[str]:
        return [f"arn:aws:s3:::{bucket}/{p}/*" for p in prefixes]

    def listing(sid: str, bucket: str, *prefixes: str) -> dict:
        return {"Sid": sid, "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": [form for p in prefixes for form in (p, f"{p}/*")]}}}

    multipart = ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    return {"Version": "2012-10-17", "Statement": [
        listing("ListOwnSource", src_bucket, src),
        {"Sid": "ReadOwnSource", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": objects(src_bucket, src)},
        {"Sid": "WriteOwnTaskPackages", "Effect": "Allow", "Action": ["s3:PutObject", *multipart],
         "Resource": objects(src_bucket, join_key(src, "tasks"))},
        listing("ListOwnReleases", rel_bucket, releases, staging),
        {"Sid": "ReadWriteOwnReleases", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", *multipart],
         "Resource": objects(rel_bucket, releases, staging)},
        {"Sid": "CleanOwnStagingOnly", "Effect": "Allow", "Action": ["s3:DeleteObject"],
         "Resource": objects(rel_bucket, staging)},
    ]}
