"""Client isolation.

A client owns two prefixes: its batch (`source`) and its release folder (`<releases>/<client>`).
A run is refused when one of them overlaps a prefix another client owns (either contains the
other), so one client's run can neither read nor write another client's data. Object keys and
`file_name`s that would climb out of their prefix (`..`, absolute paths) or hold control
characters are refused with an `ingest.unsafe_key` finding naming them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.config import ClientConfig, ConfigError
from kpdeliver.findings import findings_for


class IsolationError(ConfigError):
    """The config reaches into another client's prefix."""


@dataclass(frozen=True)
class Place:
    """A location reduced to what decides overlap: which namespace, and the path in it."""

    namespace: str  # "file" or "s3:<endpoint>:<bucket>"
    parts: tuple[str, ...]
    text: str

    def overlaps(self, other: "Place") -> bool:
        n = min(len(self.parts), len(other.parts))
        return self.namespace == other.namespace and self.parts[:n] == other.parts[:n]


def place(location: str, *, endpoint_url: str | None = None, sub: str = "") -> Place:
    """Normalise a local path, file:// or s3:// location (plus an optional sub-folder)."""
    if location.startswith("s3://"):
        u = urlsplit(location)
        parts = tuple(p for p in f"{u.path}/{sub}".split("/") if p)
        endpoint = (endpoint_url or "aws").rstrip("/").lower()
        return Place(f"s3:{endpoint}:{u.netloc}", parts, f"s3://{u.netloc}/{'/'.join(parts)}".rstrip("/"))
    path = Path(location.removeprefix("file://")).expanduser().resolve() / sub
    return Place("file", path.parts, str(path))


def owned_places(config: ClientConfig) -> dict[str, Place]:
    endpoint = config.storage.endpoint_url
    return {
        "source": place(config.source, endpoint_url=endpoint),
        "release folder": place(config.releases, endpoint_url=endpoint, sub=config.client),
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
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise IsolationError(f"refusing to run: {problems[0]}{more}")


def configs_beside(config_path: str | Path) -> list[ClientConfig]:
    """The other client configs in the same folder as `config_path` (YAML files with a `client`
    key), so `deliver --config clients/acme.yaml` can be checked against its neighbours."""
    import yaml

    from kpdeliver.config import load_config

    here = Path(config_path).resolve()
    out = []
    for p in sorted(here.parent.glob("*.y*ml")):
        if p.resolve() == here:
            continue
        try:
            doc = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError):
            continue  # not a client config; load_config would say why if it were used as one
        if isinstance(doc, dict) and "client" in doc:
            out.append(load_config(p))
    return out


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
