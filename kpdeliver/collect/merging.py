"""Merge what several annotation files of one schema hold into one Decoded, shifting ids that
collide across files."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa

from kpdeliver.codecs import REJECTED_SCHEMA, Decoded
from kpdeliver.findings import concat_findings
from kpdeliver.model import NONE, Category, Dataset, Images, Instances, concat_images, concat_instances


def merge_decoded(parts: list[Decoded]) -> Decoded:
    """One Decoded from several files of one schema. Image and instance ids that collide across
    files are shifted past the ids already taken (the source file stays in `Images.source`)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0].dataset
    images: list[Images]
    instances: list[Instances]
    cats: dict[int, Category]
    images, instances, cats = [], [], {}
    next_img = next_ins = 0
    for d in parts:
        ds = d.dataset
        im, ins = ds.images, ds.instances
        shift_img = (
            next_img
            if np.intersect1d(im.id, np.concatenate([x.id for x in images] or [np.zeros(0, np.int64)])).size
            else 0
        )
        im = replace(im, id=im.id + shift_img)
        all_ins = np.concatenate([x.id for x in instances] or [np.zeros(0, np.int64)])
        shift_ins = next_ins if np.intersect1d(ins.id, all_ins).size else 0
        ins = replace(
            ins,
            id=ins.id + shift_ins,
            image_id=np.where(ins.image_id == NONE, NONE, ins.image_id + shift_img),
        )
        images.append(im)
        instances.append(ins)
        next_img = max(next_img, int(im.id.max(initial=0)) + 1)
        next_ins = max(next_ins, int(ins.id.max(initial=0)) + 1)
        for c in ds.categories:
            cats.setdefault(c.id, c)
    k = first.schema.num_keypoints
    merged = concat_instances(instances, k)
    if not len(merged):  # keep [0, K, 3]: model.Instances.empty(K) yields [0, 0, 3]
        merged = Instances.build(id=[], image_id=[], keypoints=np.zeros((0, k, 3)), num_kpts=k)
    ds = Dataset(first.schema, concat_images(images), merged, tuple(cats.values()))
    rejected = pa.concat_tables([REJECTED_SCHEMA.empty_table(), *[d.rejected for d in parts]])
    return Decoded(ds, concat_findings([d.findings for d in parts]), rejected)
