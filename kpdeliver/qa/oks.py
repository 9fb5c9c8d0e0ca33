"""Object Keypoint Similarity, computed as COCO does, vectorised over all pairs.

OKS = sum_k exp(-d_k^2 / (2 s^2 kappa_k^2)) [v_k > 0] / sum_k [v_k > 0], kappa = 2 sigma, with the
visibility and the scale s^2 taken from the reference ("ground truth") instance. s^2 is the instance
area (segmentation area), else bbox area * 0.53 (as xtcocotools does), else the area of the tight box
around the labeled points * 0.53. Equal to pycocotools' `COCOeval.computeOks` to rounding.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from kpdeliver.model import Instances

BBOX_AREA_FACTOR = 0.53
_EPS = np.spacing(1)  # pycocotools adds it to the area


def scale_sq(instances: Instances) -> np.ndarray:
    """s^2 per instance: area, else bbox area * 0.53, else labeled-point box area * 0.53 (NaN if none)."""
    area = instances.area.astype(np.float64)
    box = instances.bbox[:, 2] * instances.bbox[:, 3] * BBOX_AREA_FACTOR
    tight = instances.bbox_from_keypoints()
    tight_area = tight[:, 2] * tight[:, 3] * BBOX_AREA_FACTOR
    out = np.where(np.isfinite(area) & (area > 0), area, np.nan)
    out = np.where(np.isnan(out) & np.isfinite(box) & (box > 0), box, out)
    return np.where(np.isnan(out) & np.isfinite(tight_area) & (tight_area > 0), tight_area, out)


def keypoint_similarity(
    kps: np.ndarray, ref: np.ndarray, ref_s2: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """Per-keypoint OKS terms exp(-d^2 / (2 s^2 kappa^2)), broadcasting over leading axes.

    kps, ref: [..., K, 3]; ref_s2: [...]. NaN where the reference point is unlabeled; 0 where only
    the compared point is unlabeled (a missed point counts as a miss).
    """
    var = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    d2 = (kps[..., 0] - ref[..., 0]) ** 2 + (kps[..., 1] - ref[..., 1]) ** 2
    # a reference without a scale (one labeled point, no box) counts as area 0, as pycocotools counts it:
    # the same point scores 1, any other 0
    s2 = np.nan_to_num(np.asarray(ref_s2, np.float64), nan=0.0)
    e = d2 / var / (s2[..., None] + _EPS) / 2.0
    terms = np.where(kps[..., 2] > 0, np.exp(-e), 0.0)
    return np.where(ref[..., 2] > 0, terms, np.nan)


def oks_from_terms(terms: np.ndarray) -> np.ndarray:
    """Mean of the defined terms along the last axis (NaN when the reference has no labeled point)."""
    n = np.sum(~np.isnan(terms), axis=-1)
    total = np.nansum(terms, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


def oks_paired(kps: np.ndarray, ref: np.ndarray, ref_s2: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """OKS of row i of kps against row i of ref: [n]."""
    return oks_from_terms(keypoint_similarity(kps, ref, ref_s2, sigmas))


def oks_matrix(
    kps: np.ndarray,
    ref: np.ndarray,
    ref_s2: np.ndarray,
    sigmas: np.ndarray,
    *,
    ref_bbox: np.ndarray | None = None,
) -> np.ndarray:
    """OKS of every instance in kps [m, K, 3] against every reference in ref [n, K, 3]: [m, n].

    A reference with no labeled point is scored, as pycocotools does, by how far the points fall
    outside its bbox grown by one box size on every side (needs ref_bbox; NaN without it).
    """
    terms = keypoint_similarity(kps[:, None], ref[None, :], np.asarray(ref_s2)[None, :], sigmas)
    out = oks_from_terms(terms)
    empty = ~np.any(ref[..., 2] > 0, axis=-1)
    if ref_bbox is not None and empty.any():
        out[:, empty] = _oks_outside_box(kps, ref_bbox[empty], np.asarray(ref_s2)[empty], sigmas)
    return out


def _oks_outside_box(kps: np.ndarray, bbox: np.ndarray, s2: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    x0, x1 = bbox[:, 0] - bbox[:, 2], bbox[:, 0] + bbox[:, 2] * 2
    y0, y1 = bbox[:, 1] - bbox[:, 3], bbox[:, 1] + bbox[:, 3] * 2
    xd, yd = kps[:, None, :, 0], kps[:, None, :, 1]
    dx = np.maximum(0, x0[None, :, None] - xd) + np.maximum(0, xd - x1[None, :, None])
    dy = np.maximum(0, y0[None, :, None] - yd) + np.maximum(0, yd - y1[None, :, None])
    var = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    e = (dx**2 + dy**2) / var / (s2[None, :, None] + _EPS) / 2.0
    return np.exp(-e).mean(axis=-1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes a [..., 4] and b [..., 4] (x, y, w, h), broadcasting over the
    leading axes. Two equal boxes score 1, even of zero area; NaN where either box is absent."""
    a0, b0 = a[..., :2], b[..., :2]
    with np.errstate(invalid="ignore", divide="ignore"):
        inter = np.prod(
            np.clip(np.minimum(a0 + a[..., 2:], b0 + b[..., 2:]) - np.maximum(a0, b0), 0, None), axis=-1
        )
        union = np.prod(a[..., 2:], axis=-1) + np.prod(b[..., 2:], axis=-1) - inter
        iou = np.where(union > 0, inter / union, 0.0)
    iou = np.where((a == b).all(axis=-1), 1.0, iou)
    return np.where(np.isnan(a).any(axis=-1) | np.isnan(b).any(axis=-1), np.nan, iou)


def oks_or_box(oks: np.ndarray, a_box: np.ndarray, b_box: np.ndarray) -> np.ndarray:
    """A match score: the OKS, and where it is undefined (no labeled point to score, as for a person
    labeled with a box only, in either direction) the IoU of the two instances' boxes; so identical
    instances always score 1. oks [...], boxes broadcasting to [..., 4]."""
    return np.where(np.isnan(oks), box_iou(a_box, b_box), oks)


def match_max_total(score: np.ndarray, *, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching of rows to columns maximising the total score; pairs below min_score dropped."""
    if score.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    s = np.nan_to_num(score, nan=0.0)
    rows, cols = linear_sum_assignment(s, maximize=True)
    keep = s[rows, cols] >= min_score
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)
