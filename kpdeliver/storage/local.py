"""A local folder as an ObjectStore (the embedded default).

The store never follows a symbolic link below its root. Every path is walked one component at
a time from a descriptor of the root (`openat` with O_NOFOLLOW), so a link planted anywhere in
a key — a file, a folder, a dangling link, a loop — is refused at the moment it is met, and a
link swapped in between a check and a read cannot redirect the read (no check-then-use race).
Links are not listed; `skipped()` names them so ingest can turn each into a finding.
"""

from __future__ import annotations

import builtins
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import BinaryIO

from kpdeliver.storage.base import ObjectStore, StorageError
from kpdeliver.storage.errors import NOT_A_FOLDER, StoreFault, os_errors, os_fault
from kpdeliver.storage.held import HeldFolders
from kpdeliver.storage.keys import check_key
from kpdeliver.storage.links import LinkError, is_link, remove_if_present

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO planted in a batch must not hang the run; it is refused after fstat
_READ_MAX = 1 << 30  # Linux returns at most 2 GiB - 4 KiB per read; below that a short read means the end
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_TEMP = ".kp-tmp"
_HELD_MAX = 128  # folder descriptors one store keeps at most (the usual limit is 1,024 per process)


class LocalStore(ObjectStore):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)
        self._held = HeldFolders(_HELD_MAX)

    def __getstate__(self) -> dict:  # descriptors and locks stay in their process
        return {"root": self.root, "url": self.url}

    def __setstate__(self, state: dict) -> None:
        LocalStore.__init__(self, state["root"])

    def holding_folders(self) -> AbstractContextManager[None]:
        """Within the block (in any thread), each folder's descriptor is opened once and kept for
        the reads and writes below it, instead of walking from the root again for every object
        (`storage.held`). The folders are still reached without following links; a folder
        replaced by a link afterwards is never entered (the kept descriptor is the folder as it
        was). Not for blocks that delete folders."""
        return self._held.holding()

    def _last_folder(
        self, parts: list[str], key: str, *, create: bool = False
    ) -> AbstractContextManager[int]:
        """The descriptor of the folder `parts` (see `_folder`), a kept one inside `holding_folders`."""
        return self._held.folder(tuple(parts), lambda: self._folder(parts, key, create=create))

    def _parts(self, key: str) -> list[str]:
        return [p for p in check_key(key).split("/") if p not in ("", ".")]

    # ------------------------------------------------------------------ the descriptor walk

    def _root_fd(self, create: bool) -> int:
        try:
            if create:
                self.root.mkdir(parents=True, exist_ok=True)
            return os.open(self.root, _DIR)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise LinkError(
                    f"store root {self.url} was replaced by a symbolic link; refused", ""
                ) from None
            if e.errno in (errno.EEXIST, errno.ENOTDIR) and self.root.exists():
                raise StoreFault(f"cannot use {self.url}: it is a file, not a folder", NOT_A_FOLDER) from None
            if e.errno == errno.ENOENT and not create:
                raise
            raise os_fault(e, "write to" if create else "open", self.url) from None

    @contextmanager
    def _folder(self, parts: list[str], key: str, *, create: bool = False) -> Iterator[list[int]]:
        """Descriptors of the root and of each folder in `parts`, opened without following links.
        Raises FileNotFoundError (or NotADirectoryError) when a folder is missing and not created."""
        with ExitStack() as stack:
            fds = [self._root_fd(create)]
            stack.callback(os.close, fds[0])
            for i, name in enumerate(parts):
                try:
                    try:
                        fd = os.open(name, _DIR, dir_fd=fds[-1])
                    except FileNotFoundError:
                        if not create:
                            raise
                        try:
                            os.mkdir(name, dir_fd=fds[-1])
                        except FileExistsError:  # made meanwhile by another writer
                            pass
                        fd = os.open(name, _DIR, dir_fd=fds[-1])
                except OSError as e:
                    # O_DIRECTORY|O_NOFOLLOW on a link to a folder fails ENOTDIR, on any other link ELOOP
                    if e.errno == errno.ELOOP or (e.errno == errno.ENOTDIR and is_link(name, fds[-1])):
                        link = "/".join(parts[: i + 1])
                        raise LinkError(
                            f"cannot use {self.location(key)}: {self.location(link)} is a "
                            "symbolic link; links are never followed",
                            link,
                        ) from None
                    raise
                stack.callback(os.close, fd)
                fds.append(fd)
            yield fds

    def _open_fd(self, key: str) -> int:
        """A read descriptor of the regular file at `key`, reached without following any link."""
        return self._open_regular(key)[0]

    def _open_regular(self, key: str) -> tuple[int, int]:
        """(read descriptor, size) of the regular file at `key`, reached without following any link.
        The descriptor keeps O_NONBLOCK, which means nothing for a regular file (it only kept a
        FIFO from blocking the open)."""
        parts = self._parts(key)
        try:
            with self._last_folder(parts[:-1], key) as folder:
                fd = os.open(parts[-1], _FILE, dir_fd=folder)
        except (FileNotFoundError, NotADirectoryError):
            raise StorageError(f"no object {self.location(key)}") from None
        except LinkError:
            raise
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise LinkError(
                    f"cannot read {self.location(key)}: it is a symbolic link; links are never followed", key
                ) from None
            raise os_fault(e, "read", self.location(key)) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            if stat.S_ISDIR(st.st_mode):
                raise StorageError(f"no object {self.location(key)} (it is a folder)")
            raise LinkError(f"cannot read {self.location(key)}: not a regular file; refused", key)
        return fd, st.st_size

    # ------------------------------------------------------------------ listing

    def _walk(self, dir_fd: int, rel: str, files: list[str], skipped: list[tuple[str, str]]) -> None:
        with os.scandir(dir_fd) as entries:
            items = sorted((e.name, e) for e in entries)
        for name, entry in items:
            key = f"{rel}{name}"
            if entry.is_symlink():
                skipped.append((key, "is a symbolic link"))
            elif entry.is_dir(follow_symlinks=False):
                if name.startswith(_TEMP):
                    continue
                try:
                    fd = os.open(name, _DIR, dir_fd=dir_fd)
                except OSError as e:  # swapped for a link (ELOOP) or removed since scandir; else unreadable
                    if e.errno == errno.ELOOP:
                        skipped.append((key, "is a symbolic link"))
                    elif e.errno != errno.ENOENT:
                        raise os_fault(e, "list", self.location(key)) from None
                    continue
                try:
                    self._walk(fd, key + "/", files, skipped)
                finally:
                    os.close(fd)
            elif entry.is_file(follow_symlinks=False):
                if not name.startswith(_TEMP):
                    files.append(key)
            else:
                skipped.append((key, "is not a regular file (FIFO, socket or device)"))

    def _scan(self, prefix: str) -> tuple[list[str], list[tuple[str, str]]]:
        parts = self._parts(prefix.rstrip("/")) if prefix.strip("/") else []
        files: list[str] = []
        skipped: list[tuple[str, str]] = []
        try:
            with self._folder(parts[:-1], prefix) as fds:
                if not parts:
                    self._walk(fds[-1], "", files, skipped)
                    return files, skipped
                st = os.stat(parts[-1], dir_fd=fds[-1], follow_symlinks=False)
                key = "/".join(parts)
                if stat.S_ISLNK(st.st_mode):
                    skipped.append((key, "is a symbolic link"))
                elif stat.S_ISREG(st.st_mode):
                    files.append(prefix)
                elif stat.S_ISDIR(st.st_mode):
                    fd = os.open(parts[-1], _DIR, dir_fd=fds[-1])
                    try:
                        self._walk(fd, key + "/", files, skipped)
                    finally:
                        os.close(fd)
        except LinkError as e:
            skipped.append((e.key, "is a symbolic link"))
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as e:
            if e.errno != errno.ELOOP:  # anything but a link swapped in mid-walk
                raise os_fault(e, "list", self.location(prefix)) from None
        return sorted(files), sorted(skipped)

    def list(self, prefix: str = "") -> Iterator[str]:
        yield from self._scan(prefix)[0]

    def skipped(self, prefix: str = "") -> builtins.list[tuple[str, str]]:
        return self._scan(prefix)[1]

    # ------------------------------------------------------------------ reading

    def get(self, key: str) -> bytes:
        """The object's bytes: open, fstat, read, close (a file object would add three system
        calls per image, a tenth of ingest on a VM)."""
        fd, size = self._open_regular(key)
        try:
            chunks, want = [], min(size + 1, _READ_MAX)
            while True:
                chunks.append(os.read(fd, want))
                if len(chunks[-1]) < want:  # a short read of a regular file is its end (want <= 1 GiB)
                    break
                want = _READ_MAX
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        except OSError as e:
            raise os_fault(e, "read", self.location(key)) from None
        finally:
            os.close(fd)

    def open(self, key: str) -> BinaryIO:
        fd = self._open_fd(key)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def exists(self, key: str) -> bool:
        check_key(key)  # an unsafe key is an error, not a missing object
        try:
            os.close(self._open_fd(key))
            return True
        except StoreFault:  # denied, not a folder...: the store cannot say, which is not "absent"
            raise
        except StorageError:
            return False

    def size(self, key: str) -> int:
        fd = self._open_fd(key)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ writing

    @contextmanager
    def _temp(self, key: str) -> Iterator[tuple[int, str, str, int]]:
        """(folder descriptor, temp name, final name, temp write descriptor) for writing `key`.

        Created 0o666 so the kernel applies the process umask (mkstemp would force 0600). The
        caller renames the temp file away, or removes it; when the block raises, it is removed here."""
        parts = self._parts(key)
        with self._last_folder(parts[:-1], key, create=True) as folder:
            tmp = f"{_TEMP}{secrets.token_hex(8)}"
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                0o666,
                dir_fd=folder,
            )
            try:
                yield folder, tmp, parts[-1], fd
            except BaseException:
                remove_if_present(tmp, folder)
                raise
            finally:
                try:
                    os.close(fd)
                except OSError:
                    pass

    @staticmethod
    def _write_all(fd: int, data: bytes, durable: bool = True) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)

    def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        """`durable=False` skips the fsync, for many files that one `sync()` makes durable together
        (a release's staging area, before its STAGED marker)."""
        with os_errors("write", self.location(key)), self._temp(key) as (dir_fd, tmp, name, fd):
            self._write_all(fd, data, durable)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)

    def sync(self) -> None:
        """Flush every write not yet durable (those of `put(..., durable=False)`) to disk."""
        os.sync()

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with os_errors("write", self.location(key)), self._temp(key) as (dir_fd, tmp, name, fd):
            self._write_all(fd, data)
            try:
                # atomic and exclusive: fails if the name exists (a link there included)
                os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                return True
            except FileExistsError:
                return False
            finally:
                remove_if_present(tmp, dir_fd)

    def delete(self, key: str) -> None:
        parts = self._parts(key)
        with os_errors("delete", self.location(key)):
            try:
                with self._folder(parts[:-1], key) as fds:
                    try:
                        os.unlink(parts[-1], dir_fd=fds[-1])
                    except FileNotFoundError:
                        return
                    # folders are implicit in an object store: drop the ones this delete left empty
                    for i in range(len(parts) - 2, -1, -1):
                        try:
                            os.rmdir(parts[i], dir_fd=fds[i])
                        except OSError:
                            break
            except (FileNotFoundError, NotADirectoryError):
                return

    def copy(self, src_key: str, dst_key: str) -> None:
        """Within the store a copy is a hard link: no object is changed in place (every write renames
        a new file over its key), so a shared inode reads as a copy, and publishing a staged
        release moves no bytes. Filesystems without hard links get a byte copy."""
        src, dst = self._parts(src_key), self._parts(dst_key)
        try:
            with (
                self._last_folder(src[:-1], src_key) as src_dir,
                self._last_folder(dst[:-1], dst_key, create=True) as dir_fd,
            ):
                tmp = f"{_TEMP}{secrets.token_hex(8)}"
                os.link(src[-1], tmp, src_dir_fd=src_dir, dst_dir_fd=dir_fd, follow_symlinks=False)
                try:
                    if not stat.S_ISREG(os.stat(tmp, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                        raise LinkError(
                            f"cannot copy {self.location(src_key)}: not a regular file; refused", src_key
                        )
                    os.replace(tmp, dst[-1], src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                except BaseException:
                    remove_if_present(tmp, dir_fd)
                    raise
                return
        except (FileNotFoundError, NotADirectoryError):
            raise StorageError(f"no object {self.location(src_key)}") from None
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP):
                raise os_fault(e, f"copy {self.location(src_key)} to", self.location(dst_key)) from None
        self.copy_from(self, src_key, dst_key)

    def move_folder(self, src_prefix: str, dst_prefix: str) -> bool:
        """One rename, made durable; False when `dst_prefix` holds files or is on another file system."""
        src, dst = self._parts(src_prefix), self._parts(dst_prefix)
        try:
            with (
                self._last_folder(src[:-1], src_prefix) as src_dir,
                self._last_folder(dst[:-1], dst_prefix, create=True) as dst_dir,
            ):
                if not stat.S_ISDIR(os.stat(src[-1], dir_fd=src_dir, follow_symlinks=False).st_mode):
                    raise LinkError(f"cannot move {self.location(src_prefix)}: not a folder", src_prefix)
                os.rename(src[-1], dst[-1], src_dir_fd=src_dir, dst_dir_fd=dst_dir)
                os.fsync(src_dir)
                os.fsync(dst_dir)
        except FileNotFoundError:
            raise StorageError(f"no folder {self.location(src_prefix)}") from None
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EXDEV, errno.ENOTDIR, errno.EISDIR):
                return False
            raise os_fault(e, f"move {self.location(src_prefix)} to", self.location(dst_prefix)) from None
        return True

    def copy_from(self, src: ObjectStore, src_key: str, dst_key: str) -> None:
        if not isinstance(src, LocalStore):
            with src.open(src_key) as fh:
                self.put(dst_key, fh.read())
            return
        in_fd = src._open_fd(src_key)
        try:
            with (
                os_errors("write", self.location(dst_key)),
                self._temp(dst_key) as (dir_fd, tmp, name, out_fd),
            ):
                size, offset = os.fstat(in_fd).st_size, 0
                while offset < size:
                    sent = os.sendfile(out_fd, in_fd, offset, min(size - offset, 1 << 30))
                    if sent == 0:
                        break
                    offset += sent
                os.fsync(out_fd)
                os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        finally:
            os.close(in_fd)
