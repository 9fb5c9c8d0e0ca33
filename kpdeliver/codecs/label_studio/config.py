"""Label Studio labeling configs: the keypoint names (and so a schema) a project declares, and
the config that matches what `encode` writes."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from defusedxml import ElementTree as SafeET

from kpdeliver.codecs import CodecError
from kpdeliver.schema import DEFAULT_SIGMA, KeypointSchema, pairs_by_side

OCCLUDED_CHOICES = frozenset({"occluded", "not visible", "invisible", "hidden"})
VISIBILITY_CONTROL = "visibility"


def config_keypoint_names(label_config: bytes | str, *, source: str = "") -> tuple[tuple[str, ...], str]:
    """Keypoint names from a labeling config's `<KeyPointLabels>`, in `model_index` order
    (document order where no model_index is given), and the first RectangleLabels label."""
    try:
        root = SafeET.fromstring(label_config)
    except Exception as e:
        raise CodecError(f"{source}: labeling config is not valid XML ({e})") from None
    labels = [
        (lab.get("value", ""), lab.get("model_index"))
        for kp in root.iter("KeyPointLabels")
        for lab in kp.iter("Label")
    ]
    if not labels:
        raise CodecError(f"{source}: labeling config has no <KeyPointLabels> labels")
    with_index = [
        (int(mi), i, v) for i, (v, mi) in enumerate(labels) if mi is not None and mi.strip().isdigit()
    ]
    if len(with_index) == len(labels):
        names = tuple(v for _, _, v in sorted(with_index))
    else:
        names = tuple(v for v, _ in labels)
    rect = [lab.get("value", "") for r in root.iter("RectangleLabels") for lab in r.iter("Label")]
    return names, (rect[0] if rect else "object")


def schema_from_config(label_config: bytes | str, *, source: str = "") -> KeypointSchema:
    names, category = config_keypoint_names(label_config, source=source)
    return KeypointSchema(
        name=category,
        keypoints=names,
        skeleton=(),
        flip_pairs=pairs_by_side(names),
        sigmas=(DEFAULT_SIGMA,) * len(names),
        category=category,
        source=f"Label Studio labeling config (sigmas {DEFAULT_SIGMA} by default)",
    )


def label_config(schema: KeypointSchema) -> str:
    """A labeling config that matches `encode`: keypoint labels with model_index, a person box,
    and a per-region `visibility` choice for occluded points."""
    kps = "\n".join(
        f'    <Label value={quoteattr(n)} model_index="{i}"/>' for i, n in enumerate(schema.keypoints)
    )
    return (
        '<View>\n  <Image name="image" value="$image"/>\n'
        f'  <KeyPointLabels name="keypoints" toName="image">\n{kps}\n  </KeyPointLabels>\n'
        f'  <RectangleLabels name="bbox" toName="image">\n    <Label value={quoteattr(schema.category)}/>\n'
        "  </RectangleLabels>\n"
        f'  <Choices name="{VISIBILITY_CONTROL}" toName="image" perRegion="true">\n'
        '    <Choice value="occluded"/>\n  </Choices>\n</View>\n'
    )
