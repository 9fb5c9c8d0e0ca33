"""One small storage interface for every place batches and releases live.

Keys are '/'-separated paths relative to the store's root. Adapters: a local folder (default)
and S3 (`kpdeliver.storage.s3`, the only module that imports boto3).
"""

from __future__ import annotations

import builtins
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import BinaryIO

from kpdeliver.errors import KpdeliverError, one_line


class StorageError(KpdeliverError, RuntimeError):
    """A storage operation failed; the message names the location and key (the store stage's root)."""

    def sentence(self) -> str:
        return one_line(str(self))


class StoreUnreachable(StorageError):
    """The store could not be reached at all (no endpoint answering): says nothing about its content."""

    cause, transient = "unreachable", True  # as a StoreFault (kpdeliver.storage.errors) says it


class UnsafeKeyError(StorageError):
    """A key or file_name would escape its prefix (path traversal) or holds control characters."""


def join_key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class ObjectStore(ABC):
    """list / get / put / exists / copy, plus the few extras publication needs."""

    url: str

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under `prefix`, sorted, relative to the store root."""

    def holding_folders(self) -> AbstractContextManager[None]:
        """A block of many reads and writes (see LocalStore's); S3 has no folders to hold."""
        return nullcontext()

    def skipped(self, prefix: str = "") -> builtins.list[tuple[str, str]]:
        """(key, why) for entries under `prefix` that exist but are not listed as objects because
        reading them could leave the store (symbolic links, special files). S3 has none."""
        return []

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable stream of the object (for large objects)."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write atomically: readers see the old object or the whole new one."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write only if no object exists at `key`; False (nothing written) if one does."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def copy(self, src_key: str, dst_key: str) -> None:
        """Copy within this store (adapters override with a server-side copy)."""
        self.put(dst_key, self.get(src_key))

    def copy_from(self, src: ObjectStore, src_key: str, dst_key: str) -> None:
        """Copy an object from another store; same-backend adapters avoid the round trip."""
        self.put(dst_key, src.get(src_key))

    def move_folder(self, src_prefix: str, dst_prefix: str) -> bool:
        """Move every object under `src_prefix` to `dst_prefix` in one atomic step, when this store
        can and `dst_prefix` holds nothing; False (nothing moved) when it cannot: copy instead."""
        return False

    def sha256(self, key: str) -> str:
        """Hex sha256 of the object, streamed (adapters that store checksums answer without reading)."""
        digest = hashlib.sha256()
        with self.open(key) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.list(prefix))
        for k in keys:
            self.delete(k)
        return len(keys)

    def location(self, key: str = "") -> str:
        """A human-readable URL or path of `key`, for messages."""
        return self.url.rstrip("/") + ("/" + key if key else "")
