"""Plain words for what the report names: checks and release counts (the stable ids stay in
`findings.parquet`; the page shows them small, next to their plain title)."""

from __future__ import annotations

CHECK_TITLES = {
    "schema.keypoint_count": "wrong number of keypoints",
    "schema.unknown_category": "unknown category",
    "schema.unknown_image": "label for an image not in the batch",
    "schema.duplicate_id": "duplicate annotation id",
    "schema.non_finite": "coordinate is not a number",
    "schema.missing_field": "required field missing",
    "schema.bad_type": "field of the wrong type",
    "visibility.invalid_flag": "visibility flag not 0, 1 or 2",
    "visibility.unlabeled_with_coords": "unlabeled point with coordinates",
    "visibility.num_keypoints_mismatch": "keypoint count disagrees with the flags",
    "visibility.labeled_at_origin": "labeled point at (0, 0)",
    "bounds.visible_outside_image": "visible point outside the image",
    "bounds.occluded_far_outside": "occluded point far outside the image",
    "bounds.occluded_outside_image": "occluded point just outside the image",
    "bounds.bbox_outside_image": "box reaches outside the image",
    "bounds.keypoint_outside_bbox": "point outside its box",
    "qa.low_agreement": "annotators disagree",
    "qa.gold_mismatch": "differs from the gold label",
    "qa.left_right_swap": "left and right swapped",
    "qa.temporal_jitter": "point jumps between video frames",
    "qa.annotator_drift": "annotator's work changed over time",
    "qa.pose_coverage": "pose under-represented",
    "ingest.duplicate_image": "duplicate image",
    "ingest.unreadable_image": "image cannot be read",
    "ingest.checksum_mismatch": "image differs from its checksum",
    "ingest.unsafe_key": "unsafe file name",
    "collect.unreadable_file": "annotation file cannot be read",
    "collect.unassigned_image": "labeled image not assigned to that annotator",
    "decode.quirk": "format quirk corrected on reading",
}

FACT_LABELS = {
    "images_listed": "images in the batch",
    "images_delivered": "images delivered",
    "images_quarantined": "images held back whole",
    "images_background": "background images (delivered without a label)",
    "images_rejected_at_ingest": "images refused at ingest",
    "instances_in": "labels collected",
    "instances_delivered": "people (instances) delivered",
    "instances_quarantined": "instances held back in quarantine",
    "instances_review_only": "second opinions used for QA only",
    "splits": "images per split",
    "delivered_error_findings": "error findings on delivered items",
    "findings": "findings",
}


def check_title(check: str) -> str:
    return CHECK_TITLES.get(check, check.rsplit(".", 1)[-1].replace("_", " "))
