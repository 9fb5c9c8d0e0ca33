"""The sections of the client configuration (kpdeliver.config.ClientConfig): splits, assignment,
validation, sign-off rules, deep-QA thresholds, YOLO, storage and schedule."""

from __future__ import annotations

import re
import warnings
from enum import Enum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kpdeliver.findings import CHECKS


class DeprecatedConfigKey(FutureWarning):
    """A client config uses a key's old name; it still works, the warning names the new one."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _rename_key(data: Any, info: ValidationInfo, section: str, old: str, new: str) -> Any:
    """`data` with the deprecated key `old` read as `new`, and a warning naming the config file."""
    if not isinstance(data, dict) or old not in data:
        return data
    if new in data:
        raise ValueError(f"give only {section}.{new}; {section}.{old} is its deprecated name")
    origin = (info.context or {}).get("origin", "<config>")
    warnings.warn(
        f"{origin}: {section}.{old} is deprecated, write {section}.{new}", DeprecatedConfigKey, stacklevel=2
    )
    return {new if k == old else k: v for k, v in data.items()}


class OutsidePolicy(str, Enum):
    """How a v=1 point estimated outside the frame is written to YOLO (Ultralytics rejects
    an image whose coordinates leave [0, 1])."""

    clip = "clip"  # clip to the frame edge, keep v=1
    zero = "zero"  # write `0 0 0` (unlabeled)


class QuarantineScope(str, Enum):
    instance = "instance"
    image = "image"


class Splits(_Model):
    train: float = Field(
        0.8, ge=0, le=1, description="fraction in train; fractions not given are 0 once any is"
    )
    val: float = Field(0.2, ge=0, le=1, description="fraction in val (0 when only others are given)")
    test: float = Field(0.0, ge=0, le=1, description="fraction in test")
    seed: int = Field(0, description="seed of the split (videos stay whole)")

    @model_validator(mode="before")
    @classmethod
    def _given_fractions_only(cls, data: Any) -> Any:
        given = isinstance(data, dict) and {"train", "val", "test"} & set(data)
        return {"train": 0.0, "val": 0.0, "test": 0.0} | data if given else data

    @model_validator(mode="after")
    def _sum_to_one(self) -> Splits:
        if abs((total := self.train + self.val + self.test) - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        return self

    def ratios(self) -> dict[str, float]:
        return {k: v for k, v in (("train", self.train), ("val", self.val), ("test", self.test)) if v > 0}


class Assignment(_Model):
    seed: int = 0
    overlap: float = Field(0.0, ge=0, le=1, description="fraction of images given to two annotators")
    gold: list[str] = Field(default_factory=list, description="file names with trusted reference labels")


class ValidationSettings(_Model):
    occluded_margin: float = Field(
        0.5, ge=0, description="v=1 may lie this fraction of the image side outside"
    )
    bbox_tolerance: float = Field(
        0.05, ge=0, description="v>0 points may lie this fraction of bbox side outside it"
    )
    mostly: float = Field(1.0, gt=0, le=1, description="GX 'mostly' for row rules: 1.0 means every row")
    quarantine: QuarantineScope = QuarantineScope.instance


class RuleSeverity(str, Enum):
    """What a sign-off rule that is not met makes of the verdict."""

    fail = "fail"  # the release is published with verdict `fail`
    conditional = "conditional"  # delivered with this exception named: verdict `conditional`


class RuleSeverities(_Model):
    """Per sign-off rule, whether missing it fails the delivery or makes it conditional (defaults below)."""

    max_error_findings: RuleSeverity = RuleSeverity.fail
    max_quarantined_fraction: RuleSeverity = RuleSeverity.fail
    min_mean_oks: RuleSeverity = RuleSeverity.fail
    min_agreement_oks: RuleSeverity = RuleSeverity.conditional
    min_gold_oks: RuleSeverity = RuleSeverity.conditional
    max_rate: RuleSeverity = RuleSeverity.conditional
    max_coverage_bins_short: RuleSeverity = RuleSeverity.conditional
    min_instances_delivered: RuleSeverity = RuleSeverity.fail
    max_unreadable_exports: RuleSeverity = RuleSeverity.fail
    min_labels_per_annotator: RuleSeverity = RuleSeverity.fail
    min_labeled_images_fraction: RuleSeverity = RuleSeverity.conditional
    max_rework_rate: RuleSeverity = RuleSeverity.conditional


# Findings of a check per delivered instance that a demanding client accepts. A swap corrupts
# flip augmentation, so none is accepted; points off the image are clear labelling slips. Gold and
# agreement are judged per annotator (min_gold_oks, min_agreement_oks), not as rates.
_DEMANDING_MAX_RATE = {
    "qa.left_right_swap": 0.0,
    "bounds.visible_outside_image": 0.01,
    "bounds.occluded_far_outside": 0.01,
    "qa.temporal_jitter": 0.02,
}


class QAThresholds(_Model):
    """The client's sign-off rules on a whole delivery (the config's `qa:` section). A rule set to
    null is not checked; `severity` says which rules fail a delivery and which make it conditional."""

    min_mean_oks: float = Field(
        0.75, ge=0, le=1, description="the annotators' mean agreement OKS is at least this"
    )
    min_agreement_oks: float | None = Field(
        0.75, ge=0, le=1, description="each annotator's agreement OKS with the others (overlap images)"
    )
    min_gold_oks: float | None = Field(
        0.75, ge=0, le=1, description="each annotator's OKS against gold labels"
    )
    max_error_findings: int = Field(0, ge=0, description="error findings left on delivered items")
    max_quarantined_fraction: float = Field(0.1, ge=0, le=1, description="instances held back / instances in")
    max_rate: dict[str, float] = Field(
        default_factory=lambda: dict(_DEMANDING_MAX_RATE),
        description=(
            "check id -> most findings of that check (delivered or held back) per delivered instance; "
            "replaces the default map, {} checks no rate"
        ),
    )
    max_coverage_bins_short: int | None = Field(
        0, ge=0, description="pose coverage targets (deep_qa.coverage_targets) not met"
    )
    min_instances_delivered: int | None = Field(1, ge=0, description="instances delivered: at least this")
    max_unreadable_exports: int | None = Field(
        0, ge=0, description="export files (or folders) not read: at most"
    )
    min_labels_per_annotator: int | None = Field(1, ge=0, description="labels from each annotator given work")
    min_labeled_images_fraction: float | None = Field(
        0.5, ge=0, le=1, description="delivered images with a label"
    )
    max_rework_rate: float | None = Field(None, ge=0, le=1, description="images sent back / images labeled")
    severity: RuleSeverities = RuleSeverities()

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any, info: ValidationInfo) -> Any:
        return _rename_key(data, info, "qa", "min_oks", "min_mean_oks")

    @field_validator("max_rate")
    @classmethod
    def _known_checks(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(CHECKS))
        if unknown:
            raise ValueError(
                f"unknown check id {', '.join(map(repr, unknown))}; known: {', '.join(sorted(CHECKS))}"
            )
        negative = sorted(c for c, r in v.items() if not r >= 0)
        if negative:
            raise ValueError(f"rate of {', '.join(negative)} must be 0 or more")
        return dict(sorted(v.items()))


class CoverageBin(_Model):
    """One pose the client wants represented: `min_count` instances with `measure` in [low, high] degrees.

    Measures: elbow_flexion, knee_flexion, arm_elevation, trunk_lean (coco17), or `angle:<keypoint>` (the
    flexion at a keypoint with two skeleton edges, any schema; 0 = straight, 180 = folded back)."""

    name: str = Field(min_length=1, description="plain words, e.g. 'arms fully overhead'")
    measure: str = Field(pattern=r"^(elbow_flexion|knee_flexion|arm_elevation|trunk_lean|angle:.+)$")
    low: float = Field(ge=0, le=180)
    high: float = Field(ge=0, le=180)
    min_count: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> CoverageBin:
        if self.high < self.low:
            raise ValueError(f"coverage bin {self.name!r}: high {self.high:g} is below low {self.low:g}")
        return self


_COCO17_COVERAGE = (
    CoverageBin(name="arms fully overhead", measure="arm_elevation", low=150, high=180),
    CoverageBin(name="arms raised to the side", measure="arm_elevation", low=70, high=110),
    CoverageBin(name="arms hanging down", measure="arm_elevation", low=0, high=30),
    CoverageBin(name="straight elbows", measure="elbow_flexion", low=0, high=20),
    CoverageBin(name="fully bent elbows", measure="elbow_flexion", low=120, high=180),
    CoverageBin(name="straight knees", measure="knee_flexion", low=0, high=20),
    CoverageBin(name="deep squats", measure="knee_flexion", low=110, high=180),
    CoverageBin(name="upright trunks", measure="trunk_lean", low=0, high=15),
    CoverageBin(name="trunks bent far forward or sideways", measure="trunk_lean", low=45, high=180),
)


class DeepQASettings(_Model):
    """Thresholds of the deep QA (agreement, gold, swaps, jitter, drift, coverage). Scale units are
    fractions of the instance scale s = sqrt(area); tolerances in kappa units are multiples of kappa * s."""

    low_agreement_oks: float = Field(
        0.75,
        ge=0,
        le=1,
        description="an instance whose agreement OKS with the "
        "other annotators is below this -> qa.low_agreement",
    )
    match_min_oks: float = Field(
        0.1, ge=0, le=1, description="instances of two annotators pair up above this"
    )
    point_tolerance: float = Field(1.5, gt=0, description="point farther than this (kappa units) from gold")
    offset_min: float = Field(0.02, ge=0, description="smallest convention offset reported (scale units)")
    offset_t: float = Field(5.0, gt=0, description="convention offset must be this many standard errors")
    offset_min_instances: int = Field(10, ge=2)
    swap_gain: float = Field(
        0.25, gt=0, le=1, description="OKS gain of the mirrored instance that means a swap"
    )
    pair_swap_gain: float = Field(0.8, gt=0, le=2, description="gain of one exchanged pair (sum of 2 terms)")
    jitter_z: float = Field(
        8.0, gt=0, description="a window's distance off its bridging path, in sigmas of the track's noise"
    )
    jitter_min: float = Field(0.03, ge=0, description="and at least this far (scale units)")
    flicker_window: int = Field(
        2, ge=1, description="visibility run this short between equal states = flicker"
    )
    drift_min_segment: int = Field(12, ge=5, description="reference items on each side of a drift's start")
    drift_threshold: float = Field(
        5.0, gt=0, description="standardised before/after difference that is drift"
    )
    coverage_targets: tuple[CoverageBin, ...] = _COCO17_COVERAGE
    generic_bins: tuple[float, ...] = Field(
        (0, 45, 90, 135, 180),
        description="bin edges (degrees) for angle:<keypoint> of schemas without targets",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any, info: ValidationInfo) -> Any:
        return _rename_key(data, info, "deep_qa", "min_oks", "low_agreement_oks")


class StorageOptions(_Model):
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    retries_mode: str | None = Field(None, pattern="^(standard|adaptive)$")
    max_attempts: int | None = Field(None, ge=1, le=20)


class YoloOptions(_Model):
    outside: OutsidePolicy = OutsidePolicy.clip
    copy_images: bool = True


class Schedule(_Model):
    """When the client's deployment runs by itself (`kpdeliver deploy`): a cron line in a time zone."""

    cron: str = Field(description="five fields: minute hour day-of-month month day-of-week, e.g. '0 6 * * 1'")
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, v: str) -> str:
        if len(v.split()) != 5 or not re.fullmatch(r"[0-9A-Za-z*/,\-? ]+", v):
            raise ValueError(
                f"cron {v!r} must have five fields (minute hour day month weekday), e.g. '0 6 * * 1'"
            )
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name such as UTC or Europe/Berlin)"
            ) from None
        return v
