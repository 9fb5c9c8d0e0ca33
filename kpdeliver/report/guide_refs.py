"""Where the labeling guide's reference pictures come from: the batch's gold labels, else the first
delivered release of the dataset (its COCO files and its image copies)."""

from __future__ import annotations

from kpdeliver.model import Dataset, Instances
from kpdeliver.report.guide import Reference, draw_reference, pick_references
from kpdeliver.schema import KeypointSchema
from kpdeliver.storage import ObjectStore, join_key


def gold_references(source: ObjectStore, schema: KeypointSchema) -> list[Reference]:
    """Pictures of the batch's gold labels (none when the batch has no gold/ folder)."""
    from kpdeliver.collect.exports import GOLD_PREFIX, collect_exports
    from kpdeliver.ingest.batch import ingest_images

    if next(iter(source.list(GOLD_PREFIX)), None) is None:
        return []
    images = ingest_images(source).images
    batch = Dataset(schema, images, Instances.empty(schema.num_keypoints))
    gold = collect_exports(source, batch, []).gold
    if gold is None:
        return []
    key = dict(zip(images.file_name.tolist(), images.source.tolist(), strict=True))
    return [draw_reference(gold, int(r), lambda name: source.get(key[name])) for r in pick_references(gold)]


def release_references(
    releases: ObjectStore, client: str, dataset: str, schema: KeypointSchema, version: int = 1
) -> list[Reference]:
    """Pictures of a delivered release's labels (none when it is not published), on its image copies."""
    from kpdeliver.codecs.coco.decoder import decode

    prefix = join_key(client, dataset, f"v{version:04d}")  # the release layout's version folder
    if not releases.exists(join_key(prefix, "manifest.json")):
        return []
    out: list[Reference] = []
    for key in sorted(releases.list(join_key(prefix, "coco/"))):
        split = key.rsplit("/", 1)[-1].removesuffix(".json")
        part = decode(releases.get(key), schema=schema, source=key).dataset

        def image(name: str, split: str = split) -> bytes:
            return releases.get(join_key(prefix, "yolo", "images", split, name))

        out += [draw_reference(part, int(r), image) for r in pick_references(part, limit=4 - len(out))]
        if len(out) >= 4:
            break
    return out
