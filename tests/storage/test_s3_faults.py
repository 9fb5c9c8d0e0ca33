"""S3 under faults: a loopback proxy in front of moto_server fails requests with 500/503 or drops
connections (before or after the server applied them); bodies damaged in transit or objects
changed after their checksum was taken are caught by sha256."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from PIL import Image

from kpdeliver.ingest.batch import ingest_images
from kpdeliver.storage import StorageError, open_store
from kpdeliver.storage.s3 import S3Store

MiB = 1024 * 1024


def store_via(proxy_url: str, bucket: str, **tuning) -> S3Store:
    opts = {
        "endpoint_url": proxy_url,
        "multipart_threshold": 5 * MiB,
        "multipart_chunksize": 5 * MiB,
        **tuning,
    }
    return open_store(f"s3://{bucket}/batch", opts)


def test_every_operation_survives_transient_faults(s3_bucket, fault_proxy):
    proxy = fault_proxy(rate=0.15, seed=11, first=("500", "drop", "503", "drop_after"))
    store = store_via(proxy.url, s3_bucket)
    small = {f"images/{i:03d}.jpg": os.urandom(2048 + i) for i in range(20)}
    for k, v in small.items():
        store.put(k, v)
    big = os.urandom(11 * MiB)
    store.put("big.bin", big)
    assert store.put_if_absent("claims/v0001", b"run-a")
    assert store.get("claims/v0001") == b"run-a"
    for k in list(small)[:10]:
        store.copy(k, "copies/" + k)
    assert list(store.list("images/")) == sorted(small)
    assert all(store.get(k) == v for k, v in small.items())
    assert hashlib.sha256(store.get("big.bin")).digest() == hashlib.sha256(big).digest()
    assert [store.get("copies/" + k) for k in list(small)[:10]] == list(small.values())[:10]
    assert store.delete_prefix("copies/") == 10
    for kind in ("500", "503", "drop", "drop_after"):
        assert proxy.stats[kind] >= 1, proxy.stats
    assert sum(proxy.stats[k] for k in ("500", "503", "drop", "drop_after")) >= 8, proxy.stats


def test_a_lost_conditional_put_response_reads_as_taken_but_holds_our_bytes(s3_bucket, fault_proxy):
    # The server applied the write; the response was lost; botocore's retry then meets our own
    # object and gets 412. The store reports "not written" and the caller reads the object back
    # to see it is its own (release.publish compares the claim's fingerprint for this reason).
    proxy = fault_proxy(rate=0.0, first=("drop_after",))
    store = store_via(proxy.url, s3_bucket)
    assert store.put_if_absent("claims/v0002", b"fingerprint-a") is False
    assert store.get("claims/v0002") == b"fingerprint-a"
    assert proxy.stats["drop_after"] == 1


def test_bodies_damaged_in_transit_are_refetched_or_refused(s3_bucket, fault_proxy, s3_endpoint):
    direct = open_store(f"s3://{s3_bucket}/batch", {"endpoint_url": s3_endpoint})
    data = os.urandom(4096)
    direct.put("images/a.jpg", data)

    flaky = store_via(fault_proxy(rate=0.0, first=("corrupt",)).url, s3_bucket)
    assert flaky.get("images/a.jpg") == data  # the first, damaged body failed its sha256; fetched again

    always = store_via(fault_proxy(rate=0.0, corrupt_gets=1.0).url, s3_bucket)
    with pytest.raises(StorageError, match=r"images/a\.jpg.*do not match the object's checksum"):
        always.get("images/a.jpg")
    with pytest.raises(StorageError, match=r"images/a\.jpg.*checksum"):
        always.open("images/a.jpg").read()


def _jpeg(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buf, "JPEG")
    return buf.getvalue()


def test_an_object_changed_after_its_checksum_was_taken_is_not_ingested(s3_bucket, s3_endpoint):
    store = open_store(f"s3://{s3_bucket}/acme/batch-7", {"endpoint_url": s3_endpoint})
    good, victim = _jpeg((10, 200, 10)), _jpeg((200, 10, 10))
    store.put("images/good.jpg", good)
    store.put("images/victim.jpg", victim)
    store.put(
        "checksums.sha256",
        "".join(
            f"{hashlib.sha256(d).hexdigest()}  images/{n}\n"
            for n, d in (("good.jpg", good), ("victim.jpg", victim))
        ).encode(),
    )
    changed = bytearray(victim)
    changed[len(changed) // 2] ^= 0x01  # one byte, after the checksums were taken
    store.put("images/victim.jpg", bytes(changed))
    res = ingest_images(store)
    assert res.images.file_name.tolist() == ["good.jpg"]
    rows = res.findings.to_pylist()
    assert [(r["check"], r["source"]) for r in rows] == [("ingest.checksum_mismatch", "images/victim.jpg")]
    assert f"s3://{s3_bucket}/acme/batch-7/images/victim.jpg" in rows[0]["message"]


def test_adaptive_retries_and_clear_errors(s3_bucket, s3_endpoint, fault_proxy):
    proxy = fault_proxy(rate=0.0, first=("503", "503"))
    store = store_via(proxy.url, s3_bucket, retries_mode="adaptive")
    for i in range(5):
        store.put(f"k/{i}", b"v")
    assert len(list(store.list("k/"))) == 5 and proxy.stats["503"] == 2
    missing = open_store("s3://no-such-bucket-kp/x", {"endpoint_url": s3_endpoint})
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-kp' does not exist"):
        missing.get("a.txt")
    dead = store_via(fault_proxy(rate=1.0, kinds=("500",)).url, s3_bucket, max_attempts=2)
    with pytest.raises(StorageError, match=rf"s3://{s3_bucket}/batch/k/0: InternalError \(HTTP 500\)"):
        dead.get("k/0")


def test_no_secret_in_repr_pickle_or_messages(s3_bucket, s3_endpoint, monkeypatch):
    import pickle

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-never-shown")
    store = open_store(f"s3://{s3_bucket}/p", {"endpoint_url": s3_endpoint})
    with pytest.raises(StorageError) as info:  # moto does not check signatures: use a missing key
        store.size("nothing-here")
    for text in (repr(store), str(info.value), pickle.dumps(store).decode("latin-1")):
        assert "s3cr3t" not in text


def test_an_unreachable_endpoint_is_its_own_error(monkeypatch):
    import socket

    from kpdeliver.storage import StoreUnreachable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    store = open_store("s3://bucket/x", {"endpoint_url": f"http://127.0.0.1:{port}", "max_attempts": 1})
    for call in (
        lambda: store.get("a"),
        lambda: store.exists("a"),
        lambda: list(store.list("")),
        lambda: store.put_if_absent("a", b"x"),
    ):
        with pytest.raises(StoreUnreachable, match=f"127.0.0.1:{port} cannot be reached"):
            call()
