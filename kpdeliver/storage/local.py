"""A local folder as an ObjectStore (the embedded default)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from kpdeliver.storage.base import ObjectStore, StorageError, check_key


class LocalStore(ObjectStore):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if base.is_file():
            yield prefix
            return
        if not base.is_dir():
            return
        found = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".kp-tmp")]
            for f in filenames:
                if f.startswith(".kp-tmp"):
                    continue
                found.append(Path(dirpath, f).relative_to(self.root).as_posix())
        yield from sorted(found)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"no object {self.location(key)}") from None
        except OSError as e:
            raise StorageError(f"cannot read {self.location(key)}: {e.strerror}") from None

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise StorageError(f"no object {self.location(key)}") from None

    def _write_temp(self, path: Path, data: bytes) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".kp-tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return tmp

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.replace(self._write_temp(path, data), path)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        tmp = self._write_temp(path, data)
        try:
            os.link(tmp, path)  # atomic and exclusive: fails if the name exists
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # folders are implicit in an object store: drop the ones this delete left empty
        for parent in path.parents:
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def copy(self, src_key: str, dst_key: str) -> None:
        self.copy_from(self, src_key, dst_key)

    def copy_from(self, src: ObjectStore, src_key: str, dst_key: str) -> None:
        if isinstance(src, LocalStore):
            dst = self._path(dst_key)
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._write_temp(dst, b"")
            try:
                shutil.copyfile(src._path(src_key), tmp)
            except FileNotFoundError:
                os.unlink(tmp)
                raise StorageError(f"no object {src.location(src_key)}") from None
            os.replace(tmp, dst)
        else:
            with src.open(src_key) as fh:
                self.put(dst_key, fh.read())
