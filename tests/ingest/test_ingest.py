import hashlib
import io

import pyarrow.compute as pc
from PIL import Image

from kpdeliver.ingest.batch import ingest_images
from kpdeliver.storage import LocalStore


def jpeg(w, h, colour=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, "JPEG")
    return buf.getvalue()


def test_ingest_hashes_sizes_dedupes_and_reports(tmp_path):
    store = LocalStore(tmp_path)
    a, b = jpeg(64, 48), jpeg(32, 40, (0, 0, 255))
    store.put("images/a.jpg", a)
    store.put("images/sub/b.jpg", b)
    store.put("images/copy_of_a.jpg", a)
    store.put("images/broken.jpg", b"not an image")
    store.put("images/changed.jpg", jpeg(10, 10))
    store.put(
        "checksums.sha256",
        f"{'0' * 64}  images/changed.jpg\n{hashlib.sha256(a).hexdigest()}  images/a.jpg\n".encode(),
    )
    store.put("notes.txt", b"ignored")
    res = ingest_images(store)
    assert res.listed == 5
    assert res.images.file_name.tolist() == ["a.jpg", "sub/b.jpg"]
    assert res.images.width.tolist() == [64, 32] and res.images.height.tolist() == [48, 40]
    assert res.images.sha256.tolist() == [hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()]
    checks = dict(zip(res.findings["source"].to_pylist(), res.findings["check"].to_pylist()))
    assert checks == {
        "images/copy_of_a.jpg": "ingest.duplicate_image",
        "images/broken.jpg": "ingest.unreadable_image",
        "images/changed.jpg": "ingest.checksum_mismatch",
    }
    refused = {r["key"]: (r["file_name"], r["status"]) for r in res.refused.to_pylist()}
    assert refused == {k: (k.removeprefix("images/"), c.removeprefix("ingest.")) for k, c in checks.items()}
    dup = res.findings.filter(pc.equal(res.findings["check"], "ingest.duplicate_image"))
    assert "a.jpg" in dup["message"][0].as_py()
