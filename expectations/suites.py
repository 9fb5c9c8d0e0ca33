"""The three suites (schema conformance, visibility, bounds), built in code per schema and client
settings. Every expectation carries its stable check id in `meta["check"]`, which is how its
failing rows become findings.

A GX suite runs on one table, so each suite is split by table: `<schema>.<suite>.<table>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
from great_expectations.expectations import Expectation

from expectations import custom as c
from kpdeliver.config import ValidationSettings

# A point found by the first check is not reported again by the second (a far-off occluded point
# is an error; saying it is also "outside" adds nothing).
SUPERSEDES = {"bounds.occluded_far_outside": "bounds.occluded_outside_image"}


@dataclass(frozen=True)
class Rule:
    suite: str
    table: str
    check: str
    expectation: Expectation


def build_rules(*, category_ids: Iterable[int], settings: ValidationSettings) -> list[Rule]:
    """Every row rule, in report order."""
    m: dict[str, Any] = {"mostly": settings.mostly}
    margin, tol = settings.occluded_margin, settings.bbox_tolerance

    def rule(suite: str, table: str, check: str, exp: Expectation) -> Rule:
        exp.meta = {"check": check}
        return Rule(suite, table, check, exp)

    return [
        rule("schema", "points", "schema.non_finite", c.ExpectKeypointNumbersFinite(**m)),
        rule("schema", "instances", "schema.duplicate_id", c.ExpectUniqueAnnotationIds(**m)),
        rule(
            "schema",
            "instances",
            "schema.unknown_category",
            c.ExpectKnownCategories(value_set=sorted({int(i) for i in category_ids}), **m),
        ),
        rule("schema", "instances", "schema.unknown_image", c.ExpectInstanceImagesExist(**m)),
        rule("schema", "images", "schema.duplicate_id", c.ExpectUniqueImageIds(**m)),
        rule("schema", "images", "schema.missing_field", c.ExpectImageSizeKnown(**m)),
        rule("visibility", "points", "visibility.invalid_flag", c.ExpectVisibilityFlagInSet(**m)),
        rule(
            "visibility", "points", "visibility.unlabeled_with_coords", c.ExpectUnlabeledPointsAtOrigin(**m)
        ),
        rule(
            "visibility", "points", "visibility.labeled_at_origin", c.ExpectLabeledPointsAwayFromOrigin(**m)
        ),
        rule(
            "visibility",
            "instances",
            "visibility.num_keypoints_mismatch",
            c.ExpectDeclaredNumKeypointsMatch(**m),
        ),
        rule("bounds", "points", "bounds.visible_outside_image", c.ExpectVisiblePointsInsideImage(**m)),
        rule(
            "bounds",
            "points",
            "bounds.visible_outside_image",
            c.ExpectVisiblePointsInsideImage(column="visible_max", min_value=None, max_value=1, **m),
        ),
        rule(
            "bounds",
            "points",
            "bounds.occluded_far_outside",
            c.ExpectOccludedPointsNearImage(max_value=margin, **m),
        ),
        rule("bounds", "points", "bounds.occluded_outside_image", c.ExpectOccludedPointsInsideImage(**m)),
        rule(
            "bounds",
            "points",
            "bounds.keypoint_outside_bbox",
            c.ExpectLabeledPointsInsideBox(max_value=tol, **m),
        ),
        rule("bounds", "instances", "bounds.bbox_outside_image", c.ExpectBoxInsideImage(**m)),
    ]


def suite_name(schema_name: str, suite: str, table: str) -> str:
    return f"{schema_name}.{suite}.{table}"


def build_suites(rules: list[Rule], *, schema_name: str) -> dict[tuple[str, str], gx.ExpectationSuite]:
    """One GX suite per (suite, table) that has rules, keyed by that pair."""
    suites: dict[tuple[str, str], gx.ExpectationSuite] = {}
    for r in rules:
        key = (r.suite, r.table)
        if key not in suites:
            suites[key] = gx.ExpectationSuite(name=suite_name(schema_name, *key))
        suites[key].add_expectation(r.expectation)
    return suites
