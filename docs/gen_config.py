"""Writes docs/config.md, the client config reference, from the pydantic models of
`kpdeliver.config.ClientConfig`: every key with its type, default, limits and description.

    python docs/gen_config.py           # rewrite docs/config.md
    python docs/gen_config.py --check   # exit 1 when docs/config.md is out of date

A field's description is its `Field(description=...)`; a field without one is described in
`NOTES` below (tests/docs/test_config_docs.py fails when a field has neither).
"""

from __future__ import annotations

import enum
import json
import re
import sys
import types
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "config.md"

# Descriptions of the fields whose model gives none, by "<model>.<field>".
NOTES = {
    "ClientConfig.client": "the client's name: its releases go under `<releases>/<client>/`",
    "ClientConfig.dataset": "the dataset's name: releases are `<releases>/<client>/<dataset>/v<NNNN>/`",
    "ClientConfig.schema": "keypoint schema: a built-in name (`kpdeliver schemas` lists them), a schema .yaml file "
    "or a CVAT .xml whose skeleton defines it",
    "ClientConfig.source": "the client's batch: a local folder (relative to the config file) or `s3://bucket/prefix`",
    "ClientConfig.releases": "where releases are published: a local folder (relative to the config file) or "
    "`s3://bucket/prefix`",
    "ClientConfig.annotators": "the annotators' names, as under `annotations/<annotator>/` in the batch",
    "ClientConfig.category": "the keypoint category delivered, for COCO exports that hold several (a mouse and a "
    "fly): only it is read, the others are reported (`decode.quirk`); unset, a file with "
    "several is refused",
    "ClientConfig.signing_key_secret": "name of a Prefect Secret block holding the vendor's Ed25519 signing key "
    "(PEM); without it the key comes from `KPDELIVER_SIGNING_KEY` / "
    "`KPDELIVER_SIGNING_KEY_FILE`, or releases are unsigned",
    "ClientConfig.splits": "how images are split into train / val / test",
    "ClientConfig.assignment": "how images are handed to annotators: overlap and gold",
    "ClientConfig.validation": "the row rules' margins and what an error holds back",
    "ClientConfig.qa": "the sign-off rules ([release.md](release.md#the-sign-off))",
    "ClientConfig.deep_qa": "thresholds of agreement, gold, swaps, jitter, drift and coverage",
    "ClientConfig.yolo": "how the YOLO tree of the release is written",
    "ClientConfig.storage": "S3 connection settings for `source` and `releases`",
    "ClientConfig.tool": "the live annotation tool (`kpdeliver push` / `pull`); optional",
    "ClientConfig.schedule": "when `kpdeliver deploy`'s deployment runs by itself; unset, on demand",
    "ClientConfig.runner": "where the delivery's tasks run; never changes what a release holds",
    "ClientConfig.report": "how the client's QA report presents the release (left out of the input fingerprint "
    "at its defaults)",
    "QAThresholds.severity": "per rule, whether missing it fails the delivery or makes it conditional",
    "Splits.train": "fraction of the images in the train split",
    "Splits.val": "fraction of the images in the val split",
    "Splits.test": "fraction of the images in the test split (train + val + test must be 1)",
    "Splits.seed": "seed of the deterministic split",
    "Assignment.seed": "seed of the deterministic assignment of images to annotators",
    "ValidationSettings.quarantine": "what an error finding holds back: the instance, or its whole image",
    "DeepQASettings.offset_min_instances": "instances an annotator needs on a keypoint before a convention offset "
    "is reported",
    "DeepQASettings.coverage_targets": "the poses the client wants represented (`qa.pose_coverage`); the "
    "defaults are coco17's",
    "CoverageBin.measure": "elbow_flexion, knee_flexion, arm_elevation, trunk_lean (coco17), or "
    "`angle:<keypoint>`",
    "CoverageBin.low": "lowest angle of the bin, degrees",
    "CoverageBin.high": "highest angle of the bin, degrees",
    "CoverageBin.min_count": "instances the bin needs",
    "YoloOptions.outside": "a v=1 point outside the frame: clipped to the edge (keeps v=1), or written `0 0 0`",
    "YoloOptions.copy_images": "copy the images into `yolo/images/<split>/` of the release",
    "StorageOptions.endpoint_url": "S3 endpoint of a non-AWS store (MinIO); default: AWS",
    "StorageOptions.region": "S3 region; default: boto3's environment",
    "StorageOptions.profile": "AWS profile for credentials; default: boto3's environment",
    "StorageOptions.retries_mode": "botocore retry mode; default: `AWS_RETRY_MODE`, else `standard`",
    "StorageOptions.max_attempts": "botocore attempts per call; default: `AWS_MAX_ATTEMPTS`, else 8",
    "Schedule.timezone": "IANA time zone of the cron line",
    "RunnerSettings.kind": "where the tasks run: Prefect's thread pool in the flow's process, or Dask",
    "ToolSettings.kind": "the annotation tool",
}

HEADER = """\
<!-- Generated by `python docs/gen_config.py` from kpdeliver/config.py; do not edit by hand. -->
# Client config reference

One YAML file per client (`clients/<client>.yaml`). `kpdeliver check CONFIG` lists every problem
of a config at once; `deliver`, `assign` and the deployments run the same check before anything
starts. Unknown keys are refused (a misspelt key is an error, not ignored). Relative local paths
are relative to the config file.

A config with every section (`kpdeliver demo` writes its own to `<work>/client.yaml`):

```yaml
{example}
```

`schedule: {{cron: "0 6 * * 1", timezone: UTC}}` (optional) makes `kpdeliver deploy` schedule the
client's deployment; without it the deployment runs on demand.

Switching a client to S3 is only a config change: `source: s3://bucket/prefix`,
`releases: s3://bucket/prefix`, plus `storage.endpoint_url` for a non-AWS endpoint (MinIO).
Credentials come from the usual AWS environment/profile and are never logged.

Renamed keys still work, with a warning naming the new key: `qa.min_oks` is `qa.min_mean_oks`,
`deep_qa.min_oks` is `deep_qa.low_agreement_oks`.
"""

# Shown in the header; `render` checks that it is a valid config.
EXAMPLE = """\
client: acme                      # [a-z0-9._-]
dataset: warehouse-pose
schema: coco17                    # coco17 | face68 | face98 | hand21 | path/to/schema.yaml
source: s3://acme-batches/2026-11 # or a local folder
releases: s3://kp-releases        # or a local folder
annotators: [ann_a, ann_b, ann_c]
splits: {train: 0.8, val: 0.2, test: 0.0, seed: 7}
assignment: {seed: 0, overlap: 0.1, gold: [img_0001.jpg]}
validation: {quarantine: instance, occluded_margin: 0.5}
qa: {min_mean_oks: 0.75, max_error_findings: 0, max_quarantined_fraction: 0.1}  # sign-off thresholds
deep_qa: {low_agreement_oks: 0.75} # one instance's agreement OKS below this -> qa.low_agreement
yolo: {outside: clip}             # v=1 points outside the frame: clip to the edge, or `zero`
storage: {endpoint_url: null, region: null, retries_mode: standard, max_attempts: 8}
category: mouse                   # optional: the keypoint category delivered from COCO exports holding several
runner: {kind: threads}           # or {kind: dask, workers: 2} / {kind: dask, address: tcp://...}
tool: {kind: label-studio, url: http://127.0.0.1:8080, token_env: LABEL_STUDIO_TOKEN, users: {}}  # optional
signing_key_secret: kp-signing    # optional: Prefect Secret block with the Ed25519 key (or KPDELIVER_SIGNING_KEY)"""


def anchor(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def is_model(t) -> bool:
    from pydantic import BaseModel

    return isinstance(t, type) and issubclass(t, BaseModel)


def type_text(t, links: dict[type, str]) -> str:
    """A field's annotation in words: `float or null`, `list of str`, `clip | zero`."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        text = " or ".join(type_text(a, links) for a in rest)
        return text + " or null" if len(rest) < len(args) else text
    if origin in (list, tuple):
        return "list of " + type_text(args[0], links)
    if origin is dict:
        return f"map of {type_text(args[0], links)} to {type_text(args[1], links)}"
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in t)
    if is_model(t):
        return f"[{links[t]}](#{anchor(links[t])})"
    return getattr(t, "__name__", str(t))


def limits_text(field) -> str:
    """A field's constraints (`>= 0`, `<= 1`, pattern, length) in words."""
    words = []
    for m in field.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                words.append(f"{sign} {getattr(m, attr)}")
        if getattr(m, "min_length", None):
            words.append(f"length >= {m.min_length}")
        if getattr(m, "pattern", None):
            words.append(f"pattern `{m.pattern}`")
    return ", ".join(words)


def plain(value):
    """A default as JSON-able data (enums by value, models as their dump)."""
    if isinstance(value, enum.Enum):
        return value.value
    if is_model(type(value)):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def listed_default(field) -> tuple | None:
    """A default that is a list of models (coverage targets): shown as a table of its own."""
    value = None if field.is_required() or field.default_factory is not None else field.default
    return value if isinstance(value, tuple) and value and is_model(type(value[0])) else None


def default_text(field, links: dict[type, str]) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if is_model(type(value)):
        return f"see [{links[type(value)]}](#{anchor(links[type(value)])})"
    if listed_default(field):
        return f"the {len(value)} listed below"
    text = value.value if isinstance(value, enum.Enum) else value
    text = text if isinstance(text, str) else json.dumps(plain(value), ensure_ascii=False)
    return "`" + text.replace("|", "\\|") + "`"


def description(model: type, name: str, field) -> str:
    key = f"{model.__name__}.{field.alias or name}"
    text = field.description or NOTES.get(key, "")
    if not text and model.__name__ == "RuleSeverities":  # one field per sign-off rule, named alike
        text = f"severity of `qa.{name}`"
    limits = limits_text(field)
    return f"{text} ({limits})" if text and limits else text or limits


def sections() -> list[tuple[str, type]]:
    """(key path, model) of ClientConfig and every model under it, in field order."""
    from kpdeliver.config import ClientConfig

    out: list[tuple[str, type]] = []

    def walk(path: str, model: type) -> None:
        out.append((path, model))
        for name, field in model.model_fields.items():
            for t in _models_in(field.annotation):
                walk(f"{path}.{field.alias or name}" if path else field.alias or name, t)

    walk("", ClientConfig)
    return out


def _models_in(t) -> list[type]:
    if is_model(t):
        return [t]
    return [m for a in typing.get_args(t) for m in _models_in(a)]


def undescribed() -> list[str]:
    """`<model>.<field>` of every field with neither a description nor a note."""
    return [
        f"{model.__name__}.{field.alias or name}"
        for _, model in sections()
        for name, field in model.model_fields.items()
        if not description(model, name, field)
    ]


def _doc(model: type) -> str:
    """The model's own docstring as one paragraph ("" when it has none)."""
    doc = model.__dict__.get("__doc__") or ""
    return " ".join(line.strip() for line in doc.strip().splitlines() if line.strip())


def _section(path: str, model: type, links: dict[type, str]) -> list[str]:
    title = path or "Top-level keys"
    lines = [f"## {title}", ""]
    if _doc(model):
        lines += [_doc(model), ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    listed = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        text = description(model, name, field).replace("|", "\\|")
        lines.append(
            f"| `{key}` | {type_text(field.annotation, links)} | {default_text(field, links)} | {text} |"
        )
        if listed_default(field):
            listed.append((key, listed_default(field)))
    for key, items in listed:
        names = list(type(items[0]).model_fields)
        lines += ["", f"`{key}` by default:", "", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        lines += ["| " + " | ".join(str(plain(getattr(i, n))) for n in names) + " |" for i in items]
    return [*lines, ""]


def render() -> str:
    """The whole of docs/config.md."""
    import yaml

    from kpdeliver.config import config_from_dict

    config_from_dict(yaml.safe_load(EXAMPLE), origin="docs/gen_config.py EXAMPLE")
    found = sections()
    links = {model: path or "Top-level keys" for path, model in found}
    body = [line for path, model in found for line in _section(path, model, links)]
    return HEADER.format(example=EXAMPLE) + "\n" + "\n".join(body).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run `python docs/gen_config.py`", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
