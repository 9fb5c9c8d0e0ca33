"""One storage contract, run on every adapter: the local folder and S3 (moto_server on loopback)."""

from __future__ import annotations

import hashlib
import os
import pickle
import threading

import pytest

from kpdeliver.storage import LocalStore, ObjectStore, StorageError, UnsafeKeyError, open_store

MiB = 1024 * 1024


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def store(request, tmp_path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "root")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(
        f"s3://{bucket}/tenant/root",
        {"multipart_threshold": 5 * MiB, "multipart_chunksize": 5 * MiB, "copy_threshold": 5 * MiB},
    )


def test_put_get_exists_size_delete(store):
    assert not store.exists("a/b.txt")
    store.put("a/b.txt", b"hello")
    assert store.exists("a/b.txt") and store.get("a/b.txt") == b"hello" and store.size("a/b.txt") == 5
    store.put("a/b.txt", b"replaced")
    assert store.get("a/b.txt") == b"replaced"
    store.delete("a/b.txt")
    assert not store.exists("a/b.txt")
    store.delete("a/b.txt")  # deleting a missing object is not an error


def test_missing_object_errors_name_the_key(store):
    with pytest.raises(StorageError, match="nowhere/x.bin"):
        store.get("nowhere/x.bin")
    with pytest.raises(StorageError, match="nowhere/x.bin"):
        store.open("nowhere/x.bin").read()


def test_open_streams_the_object(store):
    data = os.urandom(3 * MiB + 17)
    store.put("blob.bin", data)
    with store.open("blob.bin") as fh:
        chunks = iter(lambda: fh.read(256 * 1024), b"")
        digest = hashlib.sha256()
        for c in chunks:
            digest.update(c)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_list_is_sorted_relative_and_folder_like(store):
    for k in ["b/2.txt", "a/1.txt", "a/sub/3.txt", "ab/4.txt", "top.txt"]:
        store.put(k, k.encode())
    assert list(store.list()) == ["a/1.txt", "a/sub/3.txt", "ab/4.txt", "b/2.txt", "top.txt"]
    assert list(store.list("a/")) == ["a/1.txt", "a/sub/3.txt"]
    assert list(store.list("a")) == ["a/1.txt", "a/sub/3.txt"]  # not ab/
    assert list(store.list("top.txt")) == ["top.txt"]
    assert list(store.list("missing/")) == []


def test_list_paginates_past_1000_keys(store):
    keys = [f"many/{i:05d}.txt" for i in range(1234)]
    if isinstance(store, LocalStore):
        for k in keys:
            store.put(k, b"x")
    else:  # the bulk upload is fixture set-up, not the behaviour under test
        full = store.prefix + "/"
        with _pool() as pool:
            list(
                pool.map(
                    lambda k: store.client.put_object(Bucket=store.bucket, Key=full + k, Body=b"x"), keys
                )
            )
    assert list(store.list("many/")) == keys
    assert store.delete_prefix("many/") == 1234
    assert list(store.list("many/")) == []


def _pool():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(16)


def test_put_if_absent_never_overwrites(store):
    assert store.put_if_absent("claims/v0001", b"first")
    assert not store.put_if_absent("claims/v0001", b"second")
    assert store.get("claims/v0001") == b"first"


def test_put_if_absent_has_exactly_one_winner_under_contention(store):
    wins, barrier = [], threading.Barrier(8)

    def claim(i):
        barrier.wait()
        if store.put_if_absent("race/v0007", str(i).encode()):
            wins.append(i)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(wins) == 1
    assert store.get("race/v0007") == str(wins[0]).encode()


def test_copy_and_copy_from_another_store(store, tmp_path):
    store.put("src/img.jpg", b"\xff\xd8jpeg-bytes")
    store.copy("src/img.jpg", "dst/img.jpg")
    assert store.get("dst/img.jpg") == b"\xff\xd8jpeg-bytes"
    other = LocalStore(tmp_path / "other")
    other.put("o.bin", b"from-local")
    store.copy_from(other, "o.bin", "in/o.bin")
    assert store.get("in/o.bin") == b"from-local"
    with pytest.raises(StorageError, match="src/missing.jpg"):
        store.copy("src/missing.jpg", "dst/x.jpg")


def test_large_objects_go_up_in_parts_and_come_back_whole(store):
    data = os.urandom(11 * MiB + 3)
    store.put("big/object.bin", data)
    assert store.size("big/object.bin") == len(data)
    assert hashlib.sha256(store.get("big/object.bin")).digest() == hashlib.sha256(data).digest()
    store.copy("big/object.bin", "big/copy.bin")
    assert hashlib.sha256(store.get("big/copy.bin")).digest() == hashlib.sha256(data).digest()
    assert store.put_if_absent("big/once.bin", data)
    assert not store.put_if_absent("big/once.bin", data[:10])
    assert store.size("big/once.bin") == len(data)
    if not isinstance(store, LocalStore):
        head = store.client.head_object(Bucket=store.bucket, Key=f"{store.prefix}/big/object.bin")
        assert head["ETag"].strip('"').endswith("-3")  # 3 parts of 5 MiB: it was a multipart upload
        copied = store.client.head_object(Bucket=store.bucket, Key=f"{store.prefix}/big/copy.bin")
        assert copied["ETag"].strip('"').endswith("-3")  # and a part-by-part server-side copy


@pytest.mark.parametrize(
    "key", ["../escape.txt", "a/../../b", "/etc/passwd", "C:\\x", "a\x00b", "a\nb", "tab\there", ""]
)
def test_unsafe_keys_are_refused(store, key):
    for op in (
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.put_if_absent(key, b"x"),
        lambda: list(store.list(key or "../")),
        lambda: store.exists(key),
    ):
        with pytest.raises(UnsafeKeyError):
            op()


def test_a_store_pickles_without_its_connection(store):
    store.put("p.txt", b"pickled")
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get("p.txt") == b"pickled"


def test_s3_reports_sha256_without_downloading_when_it_can(s3_bucket):
    store = open_store(
        f"s3://{s3_bucket}/x", {"multipart_threshold": 5 * MiB, "multipart_chunksize": 5 * MiB}
    )
    small, big = os.urandom(1000), os.urandom(6 * MiB)
    store.put("s.bin", small)
    store.put("b.bin", big)  # multipart: S3 keeps a checksum of part checksums, so it is streamed
    store.copy("s.bin", "s-copy.bin")
    for key, data in (("s.bin", small), ("b.bin", big), ("s-copy.bin", small)):
        assert store.sha256(key) == hashlib.sha256(data).hexdigest(), key


def test_s3_copies_across_buckets_server_side(s3_endpoint, fault_proxy):
    from tests.s3_server import make_bucket

    seen = []
    proxy = fault_proxy(rate=0.0, hook=lambda method, path: seen.append((method, path)))
    batch = open_store(f"s3://{make_bucket(s3_endpoint)}/acme/batch", {"endpoint_url": proxy.url})
    releases = open_store(f"s3://{make_bucket(s3_endpoint)}/releases", {"endpoint_url": proxy.url})
    data = os.urandom(200_000)
    batch.put("images/a.jpg", data)
    seen.clear()
    releases.copy_from(batch, "images/a.jpg", "acme/pose/v0001/yolo/images/train/a.jpg")
    assert [m for m, _ in seen] == ["HEAD", "PUT"]  # a CopyObject: the bytes never came through here
    assert releases.get("acme/pose/v0001/yolo/images/train/a.jpg") == data
