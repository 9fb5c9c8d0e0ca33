"""Archives an annotator delivers are opened with bounds: a member is inflated in pieces, refused
unread past a size or compression-ratio cap, cut off when it holds more than it declared; a damaged,
encrypted or nested member is a finding naming the archive and the member, and the other
annotators' exports are delivered as before.

The archives are built byte by byte (local header, data, central directory), so a member can
declare what an attacker wants: the 1 GiB bomb is 1 MB of deflate blocks of zeros."""

from __future__ import annotations

import bz2
import io
import struct
import tarfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import orjson
import pytest
from PIL import Image

from kpdeliver.bounded import MEMBER_MAX_RATIO
from kpdeliver.collect.exports import collect_exports
from kpdeliver.ingest.batch import ingest_images
from kpdeliver.model import Dataset, Instances
from kpdeliver.schema import COCO17
from kpdeliver.storage import LocalStore

ROOT = Path(__file__).resolve().parents[2]
COCO_VAL = ROOT / "tests" / "fixtures" / "real" / "super-gradients" / "person_keypoints_val2017.json"
MEMBER = "annotations/person_keypoints_default.json"
MiB = 1 << 20


def raw_zip(
    name: str, packed: bytes, *, crc: int, size: int, method: int = zipfile.ZIP_DEFLATED, flags: int = 0
) -> bytes:
    """A one-member zip whose headers say exactly what they are given."""
    n = name.encode()
    local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, len(packed), size, len(n), 0
    )
    central = struct.pack(
        "<4s6H3L5H2L",
        b"PK\x01\x02",
        20,
        20,
        flags,
        method,
        0,
        0x21,
        crc,
        len(packed),
        size,
        len(n),
        0,
        0,
        0,
        0,
        0,
        0,
    )
    start = len(local) + len(n) + len(packed)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(n), start, 0)
    return local + n + packed + central + n + end


def deflated(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def bomb(gib: int = 1) -> bytes:
    """About 1 MB whose member inflates to `gib` GiB of zeros (deflate blocks repeated, as bombs are)."""
    c, zeros = zlib.compressobj(9, zlib.DEFLATED, -15), bytes(MiB)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)  # every later MiB deflates to these same bytes
    crc = 0
    for _ in range(1024 * gib):
        crc = zlib.crc32(zeros, crc)
    packed = first + block * (1024 * gib - 1) + c.flush()
    return raw_zip(MEMBER, packed, crc=crc, size=1024 * gib * MiB)


def _image(name: str, w: int, h: int) -> bytes:
    buf = io.BytesIO()
    shade = zlib.crc32(name.encode())
    Image.new("RGB", (w, h), (shade & 255, shade >> 8 & 255, shade >> 16 & 255)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def batch_store(tmp_path):
    """A batch of COCO val2017 images, ann_a's export as the bare file and ann_b's zipped."""
    doc = orjson.loads(COCO_VAL.read_bytes())
    store = LocalStore(tmp_path)
    for i in doc["images"]:
        store.put(f"images/{i['file_name']}", _image(i["file_name"], i["width"], i["height"]))
    store.put("annotations/ann_a/person_keypoints.json", COCO_VAL.read_bytes())
    with io.BytesIO() as buf:
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MEMBER, COCO_VAL.read_bytes())
        store.put("annotations/ann_b/task_7.zip", buf.getvalue())
    return store


def collect_measured(store: LocalStore):
    batch = Dataset(COCO17, ingest_images(store).images, Instances.empty(COCO17.num_keypoints))
    tracemalloc.start()
    try:
        result = collect_exports(store, batch, ["ann_a", "ann_b", "ann_c"])
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def unreadable(result, key: str) -> list[str]:
    f = result.findings
    return [
        m
        for c, s, m in zip(f["check"].to_pylist(), f["source"].to_pylist(), f["message"].to_pylist())
        if c == "collect.unreadable_file" and s == key
    ]


def assert_others_delivered(result) -> None:
    ins = result.dataset.instances
    a, b = (np.flatnonzero(ins.annotator == who) for who in ("ann_a", "ann_b"))
    assert len(a) == len(b) > 0 and (ins.image_id[a] >= 0).all()
    np.testing.assert_array_equal(ins.keypoints[a], ins.keypoints[b])
    assert not (ins.annotator == "ann_c").any()


def test_a_zip_bomb_is_a_finding_naming_archive_and_member_and_is_never_inflated(batch_store):
    _, peak_without = collect_measured(batch_store)
    archive = bomb()
    assert len(archive) < 1.1 * MiB
    batch_store.put("annotations/ann_c/bomb.zip", archive)
    result, peak = collect_measured(batch_store)
    [message] = unreadable(result, "annotations/ann_c/bomb.zip")
    assert "annotations/ann_c/bomb.zip" in message and repr(MEMBER) in message, message
    assert "1.0 GiB" in message and f"{MEMBER_MAX_RATIO}:1" in message and "not inflated" in message, message
    assert_others_delivered(result)
    # the archive's own bytes (1 MB, read once by the store and once by the hash) are all it costs
    assert peak < peak_without + 8 * MiB, (peak, peak_without)


def test_a_member_that_holds_more_than_it_declares_is_cut_off(batch_store):
    """The headers claim 1 MiB (under every cap); the deflate stream holds 64 MiB of zeros."""
    packed = deflated(bytes(64 * MiB))
    batch_store.put(
        "annotations/ann_c/liar.zip", raw_zip(MEMBER, packed, crc=zlib.crc32(bytes(MiB)), size=MiB)
    )
    result, peak = collect_measured(batch_store)
    [message] = unreadable(result, "annotations/ann_c/liar.zip")
    assert MEMBER in message, message  # its first MiB was read, and is no export
    assert_others_delivered(result)
    assert peak < 32 * MiB, peak


@pytest.mark.parametrize(
    "damage",
    ["encrypted", "unsupported method", "bzip2", "damaged deflate", "wrong checksum", "archive inside"],
)
def test_a_member_that_cannot_be_read_is_a_finding_not_a_crash(batch_store, damage):
    body = b'{"images": [], "annotations": []}'
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("inner.json", body)
    archive = {
        "encrypted": lambda: raw_zip(MEMBER, deflated(body), crc=zlib.crc32(body), size=len(body), flags=1),
        "unsupported method": lambda: raw_zip(MEMBER, body, crc=zlib.crc32(body), size=len(body), method=99),
        "bzip2": lambda: raw_zip(
            MEMBER,
            bz2.compress(bytes(64 * MiB)),
            crc=zlib.crc32(body),
            size=len(body),
            method=zipfile.ZIP_BZIP2,
        ),  # bzip2 inflates a whole read at once
        "damaged deflate": lambda: raw_zip(MEMBER, b"\xff" * 40, crc=zlib.crc32(body), size=len(body)),
        "wrong checksum": lambda: raw_zip(MEMBER, deflated(body), crc=zlib.crc32(body) ^ 1, size=len(body)),
        "archive inside": lambda: raw_zip(
            MEMBER,
            inner.getvalue(),
            crc=zlib.crc32(inner.getvalue()),
            size=len(inner.getvalue()),
            method=zipfile.ZIP_STORED,
        ),
    }[damage]()
    batch_store.put("annotations/ann_c/export.zip", archive)
    result, _ = collect_measured(batch_store)
    [message] = unreadable(result, "annotations/ann_c/export.zip")
    assert "annotations/ann_c/export.zip" in message and repr(MEMBER) in message, message
    assert_others_delivered(result)


class _Zeros(io.RawIOBase):
    """`n` zero bytes, read as a stream (a bomb's member, never held whole)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def test_a_tar_gz_member_past_the_ratio_cap_is_refused_unread():
    """A Supervisely project downloaded as .tar.gz whose annotation file inflates 1000:1: a
    finding naming the archive and the member, nothing inflated."""
    from kpdeliver.codecs import CodecError, registry
    from tests.codecs.supervisely import sly_docs

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for rel, data in sly_docs.project().items():
            info = tarfile.TarInfo(f"proj/{rel}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("proj/ds0/ann/bomb.jpg.json")
        info.size = 32 * MiB
        tf.addfile(info, _Zeros(info.size))
    archive = buf.getvalue()
    assert 32 * MiB > MEMBER_MAX_RATIO * len(archive)
    tracemalloc.start()
    with pytest.raises(
        CodecError, match=r"ann_c/project.tar.gz.*'proj/ds0/ann/bomb.jpg.json'.*refused, not inflated"
    ):
        registry.decode_bytes("project.tar.gz", archive, source="annotations/ann_c/project.tar.gz")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * MiB
