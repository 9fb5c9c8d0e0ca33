"""OKS sigmas measured from the batch: how precisely this team places each keypoint.

COCO's definition (cocodataset.org, keypoint evaluation, "tuning the constants"): for keypoint i,
sigma_i^2 = E[d_i^2 / s^2], d_i the distance between an annotator's point and the reference point
of the same object, s the object scale (sqrt of its area; here the reference's s, as OKS takes it).
COCO measured it on 5000 redundantly annotated images; OKS then uses kappa_i = 2 sigma_i.

The pairs are the ones deep QA already formed (`DriftSamples`), swapped labels left out:
- a **gold pair** (annotator vs gold) measures d^2/s^2 directly (gold is the reference);
- an **overlap pair** (two annotators of one image) holds two placements, so its d^2/s^2 has twice
  the variance of one annotator's: it counts as d^2/(2 s^2). Overlap samples come once per
  direction; each unordered pair is counted once (weight 1/2 per direction). An instance that has
  a gold pair is measured against gold only (its overlap pairs would count its placement twice).
Only points labeled (v > 0) in both count. Gross mistakes (a point on the wrong joint) are not
placement spread: under Gaussian placement noise y = d^2/(c s^2) is exponential with mean sigma^2,
so points above ln(1000) times a first estimate from the median (median / ln 2; 0.1 % of clean
points lie beyond) are dropped, and the mean of the rest is corrected for that truncation.

Interval: with Gaussian placement noise, 2 n sigma_hat^2 / sigma^2 ~ chi-square with 2n degrees of
freedom (n pairs, two axes each), which gives the 95 % interval printed with each sigma.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.stats import chi2

from kpdeliver.qa.context import DriftSamples
from kpdeliver.schema import KeypointSchema, sigmas_origin

CONFIDENCE = 0.95
TAIL = np.log(1000.0)  # gross-error cut, in units of sigma^2 (exponential quantile 0.999)
_TRUNC_MEAN = (1 - (1 + TAIL) * np.exp(-TAIL)) / (1 - np.exp(-TAIL))  # E[y | y < TAIL] for y ~ Exp(1)
MIN_PAIRS = 5  # fewer pairs than this: no sigma is stated for the keypoint

SIGMAS_SCHEMA = pa.schema(
    [
        ("keypoint", pa.string()),
        ("sigma", pa.float64()),  # measured; null: fewer than MIN_PAIRS pairs
        ("low", pa.float64()),  # confidence interval
        ("high", pa.float64()),
        ("n_pairs", pa.float64()),  # pairs behind the sigma (gold pairs + overlap pairs)
        ("n_gold", pa.int64()),
        ("n_overlap", pa.float64()),
        ("n_dropped", pa.float64()),  # gross mistakes left out
        ("oks_sigma", pa.float64()),  # the sigma OKS used in this QA run
        (
            "oks_sigmas_source",
            pa.string(),
        ),  # which sigmas those are: schema | COCO default | measured vNNNN | default 0.05
        ("confidence", pa.float64()),  # of the interval
    ]
)


@dataclass(frozen=True)
class MeasuredSigmas:
    table: pa.Table  # SIGMAS_SCHEMA, one row per keypoint in schema order
    oks_sigmas_source: str  # which sigmas OKS used: schema | COCO default | measured vNNNN | default 0.05

    def to_json(self) -> dict:
        return {
            "method": "COCO: sigma^2 = E[d^2/s^2] (gold pairs d^2/s^2, overlap pairs d^2/(2 s^2)); "
            f"gross mistakes beyond {TAIL:.2f} sigma^2 dropped; chi-square interval",
            "confidence": CONFIDENCE,
            "oks_sigmas_source": self.oks_sigmas_source,
            "keypoints": self.table.to_pylist(),
        }


def _wmedian(y: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(y)
    cum = np.cumsum(w[order])
    return float(y[order][np.searchsorted(cum, cum[-1] / 2)])


def _one_keypoint(y: np.ndarray, w: np.ndarray, gold: np.ndarray) -> tuple:
    """(sigma, low, high, n, n_gold, n_overlap, n_dropped) from y = d^2/(c s^2) and pair weights."""
    if w.sum() < MIN_PAIRS:
        return None, None, None, float(w.sum()), int(gold.sum()), float(w[~gold].sum()), 0.0
    first = _wmedian(y, w) / np.log(2.0)
    keep = y <= TAIL * first if first > 0 else np.ones(len(y), bool)
    n = float(w[keep].sum())
    var = float((w[keep] * y[keep]).sum() / n) / (_TRUNC_MEAN if first > 0 else 1.0)
    lo_q, hi_q = chi2.ppf([(1 + CONFIDENCE) / 2, (1 - CONFIDENCE) / 2], 2 * n)
    return (
        np.sqrt(var),
        np.sqrt(2 * n * var / lo_q),
        np.sqrt(2 * n * var / hi_q),
        n,
        int(gold[keep].sum()),
        float(w[keep & ~gold].sum()),
        float(w[~keep].sum()),
    )


def measure_sigmas(
    samples: Sequence[DriftSamples], n_annotators: int, schema: KeypointSchema
) -> MeasuredSigmas:
    """Per keypoint sigma, interval and pair counts from the gold and overlap samples of deep QA
    (`DriftSamples.reference == n_annotators` marks a gold pair)."""
    offsets = (
        np.concatenate([s.offsets for s in samples]) if samples else np.zeros((0, schema.num_keypoints, 2))
    )
    ref = np.concatenate([s.reference for s in samples]) if samples else np.zeros(0, np.int64)
    inst = np.concatenate([s.rows for s in samples]) if samples else np.zeros(0, np.int64)
    gold = ref == n_annotators
    # an instance gold judged counts against gold only: its overlap pairs share its placement (not independent)
    use = gold | ~np.isin(inst, inst[gold])
    offsets, gold = offsets[use], gold[use]
    d2 = (offsets**2).sum(axis=-1)  # [m, K] (d/s)^2, NaN where not both labeled
    y_all = d2 / np.where(gold, 1.0, 2.0)[:, None]
    w_all = np.where(gold, 1.0, 0.5)
    origin = sigmas_origin(schema)
    rows = []
    for k, name in enumerate(schema.keypoints):
        ok = np.isfinite(y_all[:, k])
        sigma, low, high, n, n_gold, n_overlap, dropped = _one_keypoint(y_all[ok, k], w_all[ok], gold[ok])
        rows.append(
            {
                "keypoint": name,
                "sigma": sigma,
                "low": low,
                "high": high,
                "n_pairs": n,
                "n_gold": n_gold,
                "n_overlap": n_overlap,
                "n_dropped": dropped,
                "oks_sigma": schema.sigmas[k],
                "oks_sigmas_source": origin,
                "confidence": CONFIDENCE,
            }
        )
    table = pa.Table.from_pylist(rows, schema=SIGMAS_SCHEMA)
    return MeasuredSigmas(table, origin)


def sigmas_files(measured: MeasuredSigmas | None) -> dict[str, bytes]:
    """The release's qa/sigmas.json and qa/sigmas.parquet (nothing when deep QA did not run)."""
    if measured is None:
        return {}
    import orjson

    from kpdeliver.model import parquet_bytes

    return {
        "qa/sigmas.json": orjson.dumps(
            measured.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
        ),
        "qa/sigmas.parquet": parquet_bytes(measured.table),
    }


def adopt_measured(manifest: dict, measured: dict) -> tuple[dict, list[str]]:
    """A schema file's content (YAML-ready): the release's schema (`manifest["schema"]`) with each
    keypoint's sigma replaced by the measured one (`measured`: qa/sigmas.json) where one was measured,
    and `sigmas_source: measured vNNNN`. Also the names that kept their schema sigma (too few pairs)."""
    from kpdeliver.schema import BUILTIN_SCHEMAS

    schema = manifest.get("schema")
    if not isinstance(schema, dict) or not isinstance(schema.get("keypoints"), list):
        raise ValueError("its manifest holds no schema")
    names = [str(n) for n in schema["keypoints"]]
    found = {
        r.get("keypoint"): r["sigma"]
        for r in measured.get("keypoints", [])
        if isinstance(r, dict) and isinstance(r.get("sigma"), (int, float)) and r["sigma"] > 0
    }
    old = list(schema.get("sigmas") or [])
    if len(old) != len(names):
        raise ValueError("its manifest's schema has no sigma per keypoint")
    kept = [n for n in names if n not in found]
    sigmas = {
        n: round(float(found[n]), 4) if n not in kept else float(s) for n, s in zip(names, old, strict=True)
    }
    version = f"v{int(manifest.get('version', 0)):04d}"
    doc = {
        "name": schema.get("name", "schema"),
        "category": schema.get("category", "object"),
        "keypoints": names,
        "skeleton": schema.get("skeleton", []),
        "flip_pairs": schema.get("flip_pairs", []),
        "sigmas": sigmas,
        "sigmas_source": f"measured {version}",
        "source": f"{schema.get('source', '')}; sigmas measured in {manifest.get('client')}/"
        f"{manifest.get('dataset')} {version}",
    }
    builtin = BUILTIN_SCHEMAS.get(str(doc["name"]))
    if builtin is not None and list(builtin.keypoints) == names and builtin.definitions:
        doc["definitions"] = dict(builtin.definitions)
    return doc, kept
