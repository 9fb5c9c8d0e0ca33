"""CVAT skeleton metadata: the `<label type="skeleton">` definitions in `<meta>`, the schema
they define, and how a skeleton's element names map onto a given schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from kpdeliver.codecs.cvat.attributes import parse_cvat
from kpdeliver.schema import DEFAULT_SIGMA, KeypointSchema, SchemaError, pairs_by_side


@dataclass(frozen=True)
class SkeletonDef:
    """A `<label type="skeleton">` from `<meta>`: element names in order and 0-based edges."""

    name: str
    elements: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]


def skeleton_definitions(root: Element) -> list[SkeletonDef]:
    """Skeleton labels from `<meta>`, elements in the order their sub-labels are declared."""
    labels = root.findall("./meta//labels/label")
    out = []
    for lab in labels:
        if (lab.findtext("type") or "").strip() != "skeleton":
            continue
        name = (lab.findtext("name") or "").strip()
        elements = tuple(
            (sub.findtext("name") or "").strip()
            for sub in labels
            if (sub.findtext("parent") or "").strip() == name
        )
        svg = lab.findtext("svg") or ""
        # node ids in the svg refer to elements through data-label-name
        node_name = dict(re.findall(r'data-node-id="(\d+)"[^>]*?data-label-name="([^"]*)"', svg))
        node_name.update(
            {a: b for b, a in re.findall(r'data-label-name="([^"]*)"[^>]*?data-node-id="(\d+)"', svg)}
        )
        edges = []
        for frm, to in _svg_edges(svg):
            a, b = node_name.get(frm), node_name.get(to)
            if a in elements and b in elements and a != b:
                edges.append((elements.index(a), elements.index(b)))
        out.append(SkeletonDef(name, elements, tuple(edges)))
    return out


def _svg_edges(svg: str) -> list[tuple[str, str]]:
    edges = []
    for line in re.findall(r"<line\b[^>]*>", svg):
        frm = re.search(r'data-node-from="(\d+)"', line)
        to = re.search(r'data-node-to="(\d+)"', line)
        if frm and to:
            edges.append((frm.group(1), to.group(1)))
    return edges


def schema_from_skeleton(sk: SkeletonDef, *, sigma: float = DEFAULT_SIGMA) -> KeypointSchema:
    """A custom schema from a CVAT skeleton definition (CVAT has no OKS sigmas: one default)."""
    return KeypointSchema(
        name=sk.name or "cvat_skeleton",
        keypoints=sk.elements,
        skeleton=sk.edges,
        flip_pairs=pairs_by_side(sk.elements),
        sigmas=(sigma,) * len(sk.elements),
        category=sk.name or "object",
        source=f"CVAT skeleton definition {sk.name!r} (sigmas {sigma} by default)",
    )


def schema_from_cvat_xml(data: bytes, *, label: str | None = None, source: str = "") -> KeypointSchema:
    """The schema defined by a CVAT XML file's skeleton label (the first, or the one named)."""
    sks = skeleton_definitions(parse_cvat(data, source))
    sks = [s for s in sks if label in (None, s.name)]
    if not sks:
        raise SchemaError(
            f"{source}: no skeleton label{' ' + repr(label) if label else ''} in <meta><labels>"
        )
    return schema_from_skeleton(sks[0])


def element_order(sk: SkeletonDef, schema: KeypointSchema, source: str) -> dict[str, int] | str:
    """Element name -> schema index, by name (exact, or through the alias table); the reason
    as a string when this skeleton does not map onto the schema."""
    from kpdeliver.names import index_by_names

    try:
        return index_by_names(sk.elements, sk.elements, schema)
    except SchemaError as e:
        return f"{source}: skeleton label {sk.name!r}, field 'elements': {e}"
