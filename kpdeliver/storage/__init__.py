"""Storage adapters chosen by location URL: a local path (default) or s3://bucket/prefix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kpdeliver.storage.base import ObjectStore, StorageError, StoreUnreachable, UnsafeKeyError, join_key
from kpdeliver.storage.errors import StoreFault
from kpdeliver.storage.keys import check_key
from kpdeliver.storage.local import LinkError, LocalStore

__all__ = [
    "LinkError",
    "LocalStore",
    "ObjectStore",
    "StorageError",
    "StoreFault",
    "StoreUnreachable",
    "UnsafeKeyError",
    "check_key",
    "join_key",
    "open_store",
]


def open_store(location: str, options: Mapping[str, Any] | None = None) -> ObjectStore:
    """The store rooted at `location` (a local path, `file://` URL, or `s3://bucket/prefix`)."""
    if location.startswith("s3://"):
        from kpdeliver.storage.s3 import S3Store  # boto3 only when S3 is used

        return S3Store.from_url(location, **dict(options or {}))
    if location.startswith("file://"):
        location = location[len("file://") :]
    return LocalStore(location)
