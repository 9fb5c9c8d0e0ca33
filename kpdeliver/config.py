"""Typed client configuration, one YAML file per client.

```yaml
client: acme
dataset: warehouse-pose
schema: coco17                 # built-in name or path to a schema YAML
source: ./batches/acme/2026-11 # local path or s3://bucket/prefix
releases: ./releases           # local path or s3://bucket/prefix
annotators: [ann_a, ann_b]
splits: {train: 0.8, val: 0.2, test: 0.0, seed: 7}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
)

from kpdeliver.bounded import CONFIG_MAX_BYTES, BoundsError, link_out_of, read_yaml, safe_name
from kpdeliver.config_sections import (
    Assignment,
    CoverageBin,
    DeepQASettings,
    DeprecatedConfigKey,
    OutsidePolicy,
    QAThresholds,
    QuarantineScope,
    RuleSeverities,
    RuleSeverity,
    Schedule,
    Splits,
    StorageOptions,
    ValidationSettings,
    YoloOptions,
    _Model,
)
from kpdeliver.errors import ConfigError
from kpdeliver.report_settings import ReportSettings
from kpdeliver.runner_settings import RunnerSettings
from kpdeliver.schema import BUILTIN_SCHEMAS
from kpdeliver.tool_settings import ToolSettings
from kpdeliver.words import plural  # isolation and preflight say counts through here

SCHEMA_FILE_SUFFIXES = (".yaml", ".yml", ".xml")

__all__ = [
    "SCHEMA_FILE_SUFFIXES",
    "Assignment",
    "ClientConfig",
    "CoverageBin",
    "DeepQASettings",
    "DeprecatedConfigKey",
    "OutsidePolicy",
    "QAThresholds",
    "QuarantineScope",
    "RuleSeverities",
    "RuleSeverity",
    "Schedule",
    "Splits",
    "StorageOptions",
    "ValidationSettings",
    "YoloOptions",
    "config_from_dict",
    "load_config",
    "plural",
    "problems_error",
]


def problems_error(origin: str, problems: list[str], *, lead: str = "") -> ConfigError:
    """One ConfigError listing every problem of the config at `origin`."""
    if len(problems) == 1:
        return ConfigError(f"{lead}{origin}: {problems[0]}", [problems[0]])
    listing = "\n".join(f"  - {p}" for p in problems)
    return ConfigError(f"{lead}{origin} has {plural(len(problems), 'problem')}:\n{listing}", list(problems))


def _drop_unset_rework_rule(qa: object) -> None:
    """`qa.max_rework_rate` came after fingerprints existed: unset (and its severity at the default), it
    is left out of the dump, so an unchanged client's inputs keep their fingerprint (no duplicate version)."""
    if not isinstance(qa, dict) or qa.get("max_rework_rate", 0) is not None:
        return
    del qa["max_rework_rate"]
    severity = qa.get("severity")
    if isinstance(severity, dict) and severity.get("max_rework_rate") == RuleSeverity.conditional:
        del severity["max_rework_rate"]


class ClientConfig(_Model):
    client: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    dataset: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    schema_name: str = Field("coco17", alias="schema")  # `schema` in YAML (a BaseModel attribute in Python)
    source: str
    releases: str
    annotators: list[Annotated[str, AfterValidator(safe_name)]] = Field(min_length=1)  # folder names
    splits: Splits = Splits()
    assignment: Assignment = Assignment()
    validation: ValidationSettings = ValidationSettings()
    qa: QAThresholds = QAThresholds()
    deep_qa: DeepQASettings = DeepQASettings()
    yolo: YoloOptions = YoloOptions()
    storage: StorageOptions = StorageOptions()
    tool: ToolSettings | None = None  # the live annotation tool (kpdeliver.tool_settings)
    schedule: Schedule | None = None  # when `kpdeliver deploy`'s deployment runs by itself
    runner: RunnerSettings = RunnerSettings()  # where the tasks run (kpdeliver.runner_settings)
    report: ReportSettings = Field(
        ReportSettings(), exclude_if=lambda r: r == ReportSettings()
    )  # left out at defaults
    # the keypoint category delivered, for COCO exports that hold several (a mouse and a fly):
    # only it is read, the others are reported (decode.quirk); unset, a file with several is refused
    category: str | None = Field(None, min_length=1)
    # name of a Prefect Secret block holding the vendor's Ed25519 signing key (PEM); without it the
    # key comes from KPDELIVER_SIGNING_KEY / KPDELIVER_SIGNING_KEY_FILE, or releases are unsigned
    signing_key_secret: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        out = handler(
            self
        )  # an unset category is left out, so configs written before it existed keep their fingerprint
        if out.get("category", "") is None:
            del out["category"]
        _drop_unset_rework_rule(out.get("qa"))
        return out

    @field_validator("annotators")
    @classmethod
    def _unique_annotators(cls, v: list[str]) -> list[str]:
        repeated = sorted({a for a in v if v.count(a) > 1})
        if repeated:
            raise ValueError(f"annotator names must be unique; listed more than once: {', '.join(repeated)}")
        return v

    @field_validator("schema_name")
    @classmethod
    def _known_schema(cls, v: str) -> str:
        if v in BUILTIN_SCHEMAS or v.endswith(SCHEMA_FILE_SUFFIXES):
            return v
        known = ", ".join(sorted(BUILTIN_SCHEMAS))
        raise ValueError(
            f"unknown schema {v!r}; the built-in schemas are {known} "
            f"(or give a .yaml schema file or a CVAT .xml with a skeleton)"
        )

    def resolve_paths(self, base: Path) -> ClientConfig:
        """Make relative local locations relative to the config file's folder."""

        def fix(loc: str) -> str:
            if "://" in loc or Path(loc).is_absolute():
                return loc
            return str((base / loc).resolve())

        schema = self.schema_name  # a schema file of any kind (YAML, CVAT XML, ...): relative to the config
        if schema not in BUILTIN_SCHEMAS and not Path(schema).is_absolute():
            schema = str((base / schema).resolve())
        return self.model_copy(
            update={"source": fix(self.source), "releases": fix(self.releases), "schema_name": schema}
        )


def _plain(error: Mapping[str, Any]) -> str:
    """One pydantic error in plain words: which field, what is wrong, what was given."""
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind, msg = error["type"], error["msg"]
    if kind == "missing":
        return f"field '{where}' is required but missing"
    if kind == "extra_forbidden":
        return f"field '{where}' is not a known setting (misspelt, or in the wrong section?)"
    msg = (
        msg.removeprefix("Value error, ")
        .removeprefix("Assertion failed, ")
        .replace("Input should", "should", 1)
    )
    msg = msg[:1].lower() + msg[1:]
    given = error.get("input")
    shown = f" (given: {given!r})" if isinstance(given, (int, float, str)) and kind != "value_error" else ""
    return f"field '{where}': {msg}{shown}"


def _explain(err: ValidationError, origin: str) -> ConfigError:
    return problems_error(origin, [_plain(e) for e in err.errors()])


def config_from_dict(data: Any, *, origin: str = "<config>") -> ClientConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: a client config must be a YAML mapping")
    try:
        return ClientConfig.model_validate(data, context={"origin": origin})
    except ValidationError as e:
        raise _explain(e, origin) from None


def load_config(path: str | Path) -> ClientConfig:
    """Read and validate a client YAML; raise ConfigError with one clear sentence."""
    p = Path(path)
    try:
        data = read_yaml(p, what="config file", limit=CONFIG_MAX_BYTES)  # a FIFO is refused, never waited on
    except BoundsError as e:
        raise ConfigError(str(e), [e.problem]) from None
    config, base = config_from_dict(data, origin=str(p)), p.parent.resolve()
    out = None if config.schema_name in BUILTIN_SCHEMAS else link_out_of(base, config.schema_name)
    if out is not None:
        raise problems_error(
            str(p),
            [
                f"field 'schema': {config.schema_name} is a symbolic link out of the config's "
                f"folder (to {out}); links out of it are not followed"
            ],
        )
    return config.resolve_paths(base)
