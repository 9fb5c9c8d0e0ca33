"""The Label Studio labeling config of a keypoint schema.

A person box (`RectangleLabels`, the parent region), one `KeyPointLabels` label per schema
keypoint in `model_index` order, and a per-region `visibility` choice whose `occluded` value is
COCO's v=1 — the same control names the Label Studio codec reads back. Left and right points
get different colours (a left/right swap is the costliest mistake and the easiest to see), and
the skeleton, which Label Studio cannot draw, goes into the project description.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from kpdeliver.codecs.label_studio import VISIBILITY_CONTROL
from kpdeliver.schema import KeypointSchema

SIDE_COLOURS = {"left": "#1f77b4", "right": "#d62728", "centre": "#2ca02c"}
IMAGE_NAME = "image"


def _sides(schema: KeypointSchema) -> list[str]:
    """left / right / centre per keypoint: the first of each flip pair is taken as the left one
    when its name says so, else the name decides (`left_*`, `*_l`), else centre."""
    side = ["centre"] * schema.num_keypoints
    for a, b in schema.flip_pairs:
        first_left = "left" in schema.keypoints[a].lower() or "right" not in schema.keypoints[a].lower()
        side[a], side[b] = ("left", "right") if first_left else ("right", "left")
    return side


def labeling_config(schema: KeypointSchema) -> str:
    sides = _sides(schema)
    labels = "\n".join(
        f'    <Label value={quoteattr(name)} model_index="{i}" background="{SIDE_COLOURS[s]}"/>'
        for i, (name, s) in enumerate(zip(schema.keypoints, sides))
    )
    return (
        "<View>\n"
        f'  <Image name="{IMAGE_NAME}" value="$image" zoom="true" zoomControl="true"/>\n'
        f'  <RectangleLabels name="bbox" toName="{IMAGE_NAME}">\n'
        f'    <Label value={quoteattr(schema.category)} background="#ff7f0e"/>\n'
        "  </RectangleLabels>\n"
        f'  <KeyPointLabels name="keypoints" toName="{IMAGE_NAME}" strokeWidth="2">\n{labels}\n'
        "  </KeyPointLabels>\n"
        f'  <Choices name="{VISIBILITY_CONTROL}" toName="{IMAGE_NAME}" perRegion="true">\n'
        '    <Choice value="occluded"/>\n'
        "  </Choices>\n"
        "</View>\n"
    )


def project_description(schema: KeypointSchema, *, batch: str) -> str:
    """What an annotator reads in the project: the batch, the rules, and the skeleton."""
    edges = ", ".join(f"{schema.keypoints[a]}–{schema.keypoints[b]}" for a, b in schema.skeleton)
    return (
        f"kpdeliver batch {batch}. Draw one {schema.category} box, then its keypoints inside it; "
        "mark a point hidden behind something as 'occluded'; leave out points you cannot place. "
        f"Left points are blue, right points red (the person's own left/right). Skeleton: {edges or 'none'}."
    )
