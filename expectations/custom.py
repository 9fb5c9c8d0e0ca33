"""Keypoint expectations: GX core expectations with keypoint defaults and a plain-words description.

Each class reads one column of `expectations.frames` (named in its default). Bounds that come
from the client config (margins, tolerances, "mostly") are passed when a suite is built.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

# --- points table -----------------------------------------------------------------------------


class ExpectKeypointNumbersFinite(gxe.ExpectColumnValuesToBeInSet):
    column: str = "finite"
    value_set: list = [True]
    description: str = "Every keypoint's x, y and visibility flag is a finite number (no NaN, no infinity)."


class ExpectVisibilityFlagInSet(gxe.ExpectColumnValuesToBeInSet):
    column: str = "v"
    value_set: list = [0, 1, 2]
    description: str = (
        "Every visibility flag is 0 (not labeled), 1 (labeled, not visible) or 2 (labeled and visible); "
        "fractional or other values are wrong."
    )


class ExpectUnlabeledPointsAtOrigin(gxe.ExpectColumnValuesToBeBetween):
    column: str = "unlabeled_offset"
    min_value: float | None = 0
    max_value: float | None = 0
    description: str = (
        "A point with visibility 0 (not labeled) is written as x = y = 0 (column: max(|x|, |y|))."
    )


class ExpectLabeledPointsAwayFromOrigin(gxe.ExpectColumnValuesToBeBetween):
    column: str = "labeled_origin_distance"
    min_value: float | None = 0
    strict_min: bool = True
    description: str = (
        "A labeled point (visibility 1 or 2) exactly at (0, 0) is suspicious: it is usually an unlabeled "
        "point with the wrong flag (column: |x| + |y|)."
    )


class ExpectVisiblePointsInsideImage(gxe.ExpectColumnValuesToBeBetween):
    column: str = "visible_min"
    min_value: float | None = 0
    description: str = (
        "A visible point (v=2) lies inside the image, its edges included (CVAT clamps points to the edge, "
        "YOLO's range includes 1.0): 0 <= x <= width and 0 <= y <= height, as for an occluded point "
        "(columns: the smaller and larger of x/width and y/height)."
    )


class ExpectOccludedPointsNearImage(gxe.ExpectColumnValuesToBeBetween):
    column: str = "occluded_outside"
    max_value: float | None = 0.5
    description: str = (
        "An occluded point (v=1) may be estimated outside the frame, but not further than the configured "
        "margin (column: how far outside the frame, as a fraction of the image side; <= 0 inside)."
    )


class ExpectOccludedPointsInsideImage(gxe.ExpectColumnValuesToBeBetween):
    column: str = "occluded_outside"
    max_value: float | None = 0
    description: str = (
        "Notes an occluded point (v=1) estimated outside the frame: allowed within the margin, but the YOLO "
        "export clips it to the edge or drops it (column: how far outside, as a fraction of the image side)."
    )


class ExpectLabeledPointsInsideBox(gxe.ExpectColumnValuesToBeBetween):
    column: str = "box_outside"
    max_value: float | None = 0
    description: str = (
        "A labeled point lies inside its instance's bounding box, give or take the configured tolerance "
        "(column: how far outside the box, as a fraction of the box side; <= 0 inside)."
    )


# --- instances table --------------------------------------------------------------------------


class ExpectUniqueAnnotationIds(gxe.ExpectColumnValuesToBeUnique):
    column: str = "annotation_id"
    description: str = "No two instances share an annotation id."


class ExpectKnownCategories(gxe.ExpectColumnValuesToBeInSet):
    column: str = "category_id"
    description: str = "Every instance's category is one the dataset declares."


class ExpectInstanceImagesExist(gxe.ExpectColumnValuesToBeInSet):
    column: str = "image_known"
    value_set: list = [True]
    description: str = "Every instance's image_id names an image of the dataset."


class ExpectDeclaredNumKeypointsMatch(gxe.ExpectColumnValuesToBeBetween):
    column: str = "num_keypoints_excess"
    min_value: float | None = 0
    max_value: float | None = 0
    description: str = (
        "When an instance declares num_keypoints, it equals the number of its points with visibility > 0 "
        "(column: declared minus counted; instances that declare none are not checked)."
    )


class ExpectBoxInsideImage(gxe.ExpectColumnValuesToBeBetween):
    column: str = "bbox_outside"
    max_value: float | None = 0
    description: str = (
        "An instance's bounding box lies inside its image (column: how far its corners reach outside the "
        "frame, as a fraction of the image side; <= 0 inside)."
    )


# --- images table -----------------------------------------------------------------------------


class ExpectUniqueImageIds(gxe.ExpectColumnValuesToBeUnique):
    column: str = "image_id"
    description: str = "No two images share an image id."


class ExpectImageSizeKnown(gxe.ExpectColumnValuesToBeInSet):
    column: str = "size_known"
    value_set: list = [True]
    description: str = (
        "Every image has a width and a height; without them no bounds rule can run on its points "
        "(give the images folder or a sizes file)."
    )
