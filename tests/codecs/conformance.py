"""Shared round-trip conformance for every codec: hypothesis-generated datasets over the four
built-in schemas and a custom one, and one base class each codec's test module subclasses.

A generated dataset is what a clean delivery holds: v in {0, 1, 2}, v=0 points at (0, 0),
labeled points inside their image (YOLO Pose cannot carry a point outside the frame).
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpdeliver.model import Category, Dataset, Images, Instances
from kpdeliver.schema import BUILTIN_SCHEMAS, KeypointSchema, pairs_by_side

_CUSTOM_NAMES = ("snout", "left_ear_tip", "right_ear_tip", "withers", "left_paw", "right_paw", "tail_base")
CUSTOM = KeypointSchema(
    name="quadruped7",
    keypoints=_CUSTOM_NAMES,
    skeleton=((0, 1), (0, 2), (0, 3), (3, 4), (3, 5), (3, 6)),
    flip_pairs=pairs_by_side(_CUSTOM_NAMES),
    sigmas=(0.05,) * 7,
    category="dog",
    source="test",
)
SCHEMAS = (*BUILTIN_SCHEMAS.values(), CUSTOM)


def make_dataset(schema: KeypointSchema, seed: int, *, n_images: int, max_per_image: int) -> Dataset:
    """A random clean dataset; coordinates hit the image edges now and then."""
    rng = np.random.default_rng(seed)
    w = rng.integers(16, 4000, n_images)
    h = rng.integers(16, 4000, n_images)
    per = rng.integers(0, max_per_image + 1, n_images)
    img_of = np.repeat(np.arange(n_images), per)
    n, k = len(img_of), schema.num_keypoints
    kp = np.zeros((n, k, 3))
    kp[..., 0] = rng.uniform(0, 1, (n, k)) * w[img_of, None]
    kp[..., 1] = rng.uniform(0, 1, (n, k)) * h[img_of, None]
    edge = rng.random((n, k)) < 0.05
    kp[..., 0] = np.where(edge, np.where(rng.random((n, k)) < 0.5, 0.0, w[img_of, None]), kp[..., 0])
    kp[..., 2] = rng.integers(0, 3, (n, k))
    kp[kp[..., 2] == 0, :2] = 0.0
    images = Images.build(
        id=np.arange(1, n_images + 1) * 10,
        file_name=[f"dir/img_{i:04d}.jpg" for i in range(n_images)],
        width=w,
        height=h,
    )
    instances = Instances.build(
        id=np.arange(1, n + 1) * 7, image_id=(img_of + 1) * 10, keypoints=kp, num_kpts=k
    )
    return Dataset(schema, images, instances, (Category(1, schema.category),))


@st.composite
def datasets(draw, schemas=SCHEMAS) -> Dataset:
    schema = draw(st.sampled_from(schemas))
    seed = draw(st.integers(0, 2**32 - 1))
    return make_dataset(schema, seed, n_images=draw(st.integers(1, 4)), max_per_image=draw(st.integers(0, 3)))


def per_image(ds: Dataset, *, key=lambda name: name) -> dict[str, np.ndarray]:
    """Keypoints grouped by image (keyed by `key(file_name)`), instances in file order."""
    row = ds.image_index()
    names = [key(str(n)) for n in ds.images.file_name.tolist()]
    out = {name: np.zeros((0, ds.schema.num_keypoints, 3)) for name in names}
    for r, name in enumerate(names):
        out[name] = ds.instances.keypoints[row == r]
    return out


def assert_same_keypoints(a: Dataset, b: Dataset, *, atol: float = 1e-3, key=lambda name: name) -> None:
    """Same images, and per image the same instances in the same order: coordinates within
    `atol` pixels, flags equal, keypoint order equal (schema names compared too)."""
    assert a.schema.keypoints == b.schema.keypoints
    pa_, pb = per_image(a, key=key), per_image(b, key=key)
    assert sorted(pa_) == sorted(pb)
    for name, ka in pa_.items():
        kb = pb[name]
        assert ka.shape == kb.shape, name
        np.testing.assert_array_equal(ka[..., 2], kb[..., 2], err_msg=name)
        np.testing.assert_allclose(ka[..., :2], kb[..., :2], atol=atol, rtol=0, err_msg=name)


class CodecConformance:
    """Subclass and implement `roundtrip(dataset) -> Dataset`; set `same_ids` when the format
    keeps instance ids and `key` when it renames images (YOLO stems)."""

    same_ids = False
    key = staticmethod(lambda name: name)
    schemas = SCHEMAS

    def roundtrip(self, dataset: Dataset) -> Dataset:
        raise NotImplementedError

    def test_roundtrip_is_lossless(self) -> None:
        # built per subclass: one @given test shared by several classes trips hypothesis'
        # differing-executors check
        @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(ds=datasets(self.schemas))
        def check(ds: Dataset) -> None:
            back = self.roundtrip(ds)
            assert_same_keypoints(ds, back, key=self.key)
            if self.same_ids:
                np.testing.assert_array_equal(np.sort(back.instances.id), np.sort(ds.instances.id))

        check()

    def test_every_schema_roundtrips(self) -> None:
        for i, schema in enumerate(self.schemas):
            ds = make_dataset(schema, i, n_images=3, max_per_image=3)
            assert_same_keypoints(ds, self.roundtrip(ds), key=self.key)

    def test_all_flags_survive(self) -> None:
        ds = make_dataset(BUILTIN_SCHEMAS["coco17"], 7, n_images=2, max_per_image=2)
        ds.instances.keypoints[0, :, 2] = np.arange(17) % 3
        ds.instances.keypoints[0, ds.instances.keypoints[0, :, 2] == 0, :2] = 0
        back = self.roundtrip(ds)
        np.testing.assert_array_equal(
            per_image(back, key=self.key)[self.key("dir/img_0000.jpg")][..., 2],
            per_image(ds, key=self.key)[self.key("dir/img_0000.jpg")][..., 2],
        )

    def test_image_without_instances_is_kept(self) -> None:
        ds = make_dataset(BUILTIN_SCHEMAS["hand21"], 3, n_images=3, max_per_image=0)
        back = self.roundtrip(ds)
        assert len(back.images) == 3 and len(back.instances) == 0
