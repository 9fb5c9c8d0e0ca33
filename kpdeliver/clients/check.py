"""`kpdeliver check`: everything wrong with one client config, found before any run starts (its
fields, overlaps with the clients configured beside it, and the pre-flight of its locations)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kpdeliver.bounded import CONFIG_MAX_BYTES, BoundsError, read_yaml
from kpdeliver.clients.isolation import IsolationError, configs_beside, isolation_problems
from kpdeliver.config import ClientConfig, ConfigError, StorageOptions, load_config, problems_error
from kpdeliver.preflight import batch_problems, preflight_problems


def _unloadable_source_problems(config_path: Path, error: ConfigError) -> list[str]:
    """The batch problems of a config that failed validation elsewhere, so one message lists them
    too: read from the raw YAML when its source, storage and gold fields are themselves sound."""
    if any(
        p.startswith(("field 'source'", "field 'storage", "field 'assignment")) or not p.startswith("field")
        for p in error.problems
    ):
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
            error = problems_error(
                self.path, self.problems, lead="refusing to run: " if self.overlaps else ""
            )
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
