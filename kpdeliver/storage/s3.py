"""S3 (or an S3-compatible server: MinIO, moto) as an ObjectStore — the only module importing boto3.

Objects are written with a SHA-256 checksum that S3 verifies on upload, and read with
`ChecksumMode=ENABLED` so botocore verifies the bytes it receives (single-part objects; S3
keeps a composite checksum for multipart ones). Transient failures (5xx, throttling, dropped
connections) are retried by botocore in `standard` or `adaptive` mode.

Credentials come from the environment, the shared config files or a named profile, as boto3
finds them; they never appear in a repr, a message or a log line of this module.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    FlexibleChecksumError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)

from kpdeliver.storage.base import ObjectStore, StorageError, StoreUnreachable
from kpdeliver.storage.errors import CORRUPTED, NO_CREDENTIALS, NOT_FOUND, StoreFault, s3_fault
from kpdeliver.storage.keys import check_key
from kpdeliver.storage.s3_settings import MAX_PRESIGN_SECONDS, MiB, S3Settings, env_endpoint

_CHECKSUM = {"ChecksumAlgorithm": "SHA256"}
_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Store(ObjectStore):
    """Objects under `s3://bucket/prefix`; keys are relative to the prefix."""

    def __init__(self, bucket: str, prefix: str = "", *, settings: S3Settings | None = None) -> None:
        if not bucket:
            raise StorageError("an S3 location needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = check_key(prefix.strip("/")) if prefix.strip("/") else ""
        self.settings = settings or S3Settings()
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._client = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        **tuning,
    ) -> S3Store:
        """`s3://bucket/prefix`; endpoint, region and profile fall back to boto3's environment
        lookup (AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE, ...). `tuning`: S3Settings fields."""
        parts = urlsplit(url)
        if parts.scheme != "s3":
            raise StorageError(f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
        settings = S3Settings(endpoint_url=endpoint_url, region=region, profile=profile, **tuning)
        return cls(parts.netloc, parts.path, settings=settings)

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    def __getstate__(self) -> dict:
        return {"bucket": self.bucket, "prefix": self.prefix, "settings": self.settings, "url": self.url}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _client=None, _lock=threading.Lock())

    # ------------------------------------------------------------------ client and errors

    @property
    def client(self):
        """The boto3 S3 client (thread-safe; built on first use)."""
        with self._lock:
            if self._client is None:
                s = self.settings
                try:
                    session = boto3.Session(profile_name=s.profile)
                except ProfileNotFound:
                    raise StoreFault(
                        f"cannot use {self.url}: AWS profile {s.profile!r} is not configured", NO_CREDENTIALS
                    ) from None
                config = Config(
                    region_name=s.region,
                    signature_version="s3v4",
                    retries={"mode": s.retries_mode, "max_attempts": s.max_attempts},
                    connect_timeout=10,
                    read_timeout=60,
                    # S3-compatible servers (MinIO, moto) are addressed by path, not by bucket DNS name
                    s3={"addressing_style": "path"} if s.endpoint_url or env_endpoint() else None,
                )
                self._client = session.client("s3", endpoint_url=s.endpoint_url, config=config)
            return self._client

    def _transfer(self) -> TransferConfig:
        s = self.settings
        return TransferConfig(
            multipart_threshold=s.multipart_threshold, multipart_chunksize=s.multipart_chunksize
        )

    def _key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _errors(self, action: str, key: str = ""):
        where = self.location(key)
        try:
            yield
        except ClientError as e:
            err = e.response.get("Error", {})
            code, status = (
                str(err.get("Code", "?")),
                e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            )
            if code == "NoSuchBucket":
                raise StoreFault(
                    f"cannot {action} {where}: bucket {self.bucket!r} does not exist", NOT_FOUND
                ) from None
            raise s3_fault(code, status, str(err.get("Message", "")), action, where) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise StoreFault(
                f"cannot {action} {where}: no AWS credentials found (set a profile, or AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY in the environment)",
                NO_CREDENTIALS,
            ) from None
        except FlexibleChecksumError:
            raise StoreFault(
                f"cannot {action} {where}: the bytes received do not match the object's "
                "checksum (corrupted in transit or in the store)",
                CORRUPTED,
            ) from None
        except (EndpointConnectionError, ConnectTimeoutError) as e:
            endpoint = self.settings.endpoint_url or env_endpoint() or "AWS S3"
            raise StoreUnreachable(
                f"cannot {action} {where}: the S3 endpoint {endpoint} cannot be reached "
                f"({type(e).__name__}); nothing was checked"
            ) from None
        except BotoCoreError as e:
            raise StoreFault(f"cannot {action} {where}: {type(e).__name__}: {e}", transient=True) from None

    @staticmethod
    def _code(e: ClientError) -> str:
        return str(e.response.get("Error", {}).get("Code", ""))

    # ------------------------------------------------------------------ reading

    def list(self, prefix: str = "") -> Iterator[str]:
        # Same meaning as a folder: "a/b" lists the object a/b and everything under a/b/.
        rel = prefix.rstrip("/")
        full = self._key(rel) if rel else self.prefix
        request = f"{full}/" if full and (prefix.endswith("/") or not rel) else full
        cut = len(self.prefix) + 1 if self.prefix else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=request)
        with self._errors("list", prefix):
            for page in pages:  # S3 lists in UTF-8 byte order, which is code-point (sorted) order
                for obj in page.get("Contents", ()):
                    key = obj["Key"][cut:]
                    if rel and not prefix.endswith("/") and key != rel and not key.startswith(rel + "/"):
                        continue
                    yield key

    def get(self, key: str) -> bytes:
        # A body failing its checksum was damaged on the way: fetch it again, a few times.
        attempt = 0
        while True:
            attempt += 1
            with self._errors("read", key):
                try:
                    return self.client.get_object(
                        Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED"
                    )["Body"].read()
                except FlexibleChecksumError:
                    if attempt == 3:
                        raise

    def open(self, key: str) -> BinaryIO:
        with self._errors("open", key):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")[
                "Body"
            ]
        return io.BufferedReader(_Body(body, self, key), buffer_size=1 * MiB)

    def exists(self, key: str) -> bool:
        with self._errors("check", key):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
                return True
            except ClientError as e:
                if self._code(e) in _MISSING:
                    return False
                raise

    def size(self, key: str) -> int:
        with self._errors("size", key):
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])

    def sha256(self, key: str) -> str:
        """Hex sha256 of the object: S3's stored full-object checksum when it has one (no
        download; written by put, copy and single-part uploads), else the streamed bytes'."""
        with self._errors("hash", key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
        stored, multipart = head.get("ChecksumSHA256"), "-" in head.get("ETag", "")
        if stored and not multipart and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            return base64.b64decode(stored).hex()
        digest = hashlib.sha256()
        with self.open(key) as fh:
            for chunk in iter(lambda: fh.read(MiB), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def presign(self, key: str, expires_seconds: int) -> str:
        """A URL that lets anyone GET `key` for `expires_seconds` (at most 7 days)."""
        if not 1 <= expires_seconds <= MAX_PRESIGN_SECONDS:
            raise StorageError(
                f"presigned URLs last 1 s to 7 days, not {expires_seconds} s ({self.location(key)})"
            )
        with self._errors("presign", key):
            return self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=int(expires_seconds),
            )

    # ------------------------------------------------------------------ writing

    def put(self, key: str, data: bytes) -> None:
        with self._errors("write", key):
            if len(data) >= self.settings.multipart_threshold:
                self.client.upload_fileobj(
                    io.BytesIO(data),
                    self.bucket,
                    self._key(key),
                    ExtraArgs=_CHECKSUM,
                    Config=self._transfer(),
                )
            else:
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **_CHECKSUM)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        # S3 conditional write: If-None-Match: * fails with 412 when the key exists. A 409
        # means a concurrent conditional write to the same key is in flight: ask again.
        attempt = 0
        while True:
            attempt += 1
            with self._errors("write", key):
                try:
                    if len(data) >= self.settings.multipart_threshold:
                        self._multipart_if_absent(self._key(key), data)
                    else:
                        self.client.put_object(
                            Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*", **_CHECKSUM
                        )
                    return True
                except ClientError as e:
                    if self._code(e) == "PreconditionFailed":
                        return False
                    if self._code(e) != "ConditionalRequestConflict" or attempt == 6:
                        raise
            time.sleep(0.05 * 2**attempt)

    def _multipart_if_absent(self, full_key: str, data: bytes) -> None:
        c, chunk = self.client, self.settings.multipart_chunksize
        upload = c.create_multipart_upload(Bucket=self.bucket, Key=full_key, **_CHECKSUM)["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, len(data), chunk), 1):
                r = c.upload_part(
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload,
                    PartNumber=number,
                    Body=data[start : start + chunk],
                    **_CHECKSUM,
                )
                parts.append(
                    {"ETag": r["ETag"], "PartNumber": number, "ChecksumSHA256": r.get("ChecksumSHA256")}
                )
            c.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full_key,
                UploadId=upload,
                IfNoneMatch="*",
                MultipartUpload={"Parts": [{k: v for k, v in p.items() if v} for p in parts]},
            )
        except BaseException:
            with suppress(ClientError, BotoCoreError):  # keep the original error; S3 expires orphans
                c.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload)
            raise

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.list(prefix))
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = keys[start : start + 1000]
            with self._errors("delete under", prefix):
                r = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self._key(k)} for k in batch], "Quiet": True},
                )
            if r.get("Errors"):
                first = r["Errors"][0]
                raise StorageError(
                    f"cannot delete s3://{self.bucket}/{first.get('Key')}: {first.get('Code')} "
                    f"({len(r['Errors'])} keys failed)"
                )
        return len(keys)

    def copy(self, src_key: str, dst_key: str) -> None:
        self._server_copy(self, src_key, dst_key)

    def copy_from(self, src: ObjectStore, src_key: str, dst_key: str) -> None:
        if isinstance(src, S3Store) and src.client.meta.endpoint_url == self.client.meta.endpoint_url:
            self._server_copy(src, src_key, dst_key)  # the bytes never leave S3, even across buckets
            return
        with src.open(src_key) as fh, self._errors("write", dst_key):
            self.client.upload_fileobj(
                fh, self.bucket, self._key(dst_key), ExtraArgs=_CHECKSUM, Config=self._transfer()
            )

    def _server_copy(self, src: S3Store, src_key: str, dst_key: str) -> None:
        source = {"Bucket": src.bucket, "Key": src._key(src_key)}
        with src._errors("copy", src_key):
            size = int(self.client.head_object(**source)["ContentLength"])
        with self._errors(f"copy {src.location(src_key)} to", dst_key):
            if size > self.settings.copy_threshold:
                self.client.copy(
                    source,
                    self.bucket,
                    self._key(dst_key),
                    ExtraArgs=_CHECKSUM,
                    Config=TransferConfig(
                        multipart_threshold=self.settings.copy_threshold,
                        multipart_chunksize=self.settings.multipart_chunksize,
                    ),
                )
            else:
                self.client.copy_object(
                    CopySource=source, Bucket=self.bucket, Key=self._key(dst_key), **_CHECKSUM
                )


class _Body(io.RawIOBase):
    """A response body whose read errors (checksum mismatch, dropped connection) become
    StorageErrors that name the object."""

    def __init__(self, body, store: S3Store, key: str) -> None:
        self._body, self._store, self._key = body, store, key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with self._store._errors("read", self._key):
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()
