"""Folder descriptors a LocalStore keeps open for a batch of reads and writes (`holding_folders`),
so 20,000 images in one folder open that folder once, not 20,000 times.

Shared by every thread using the store; a descriptor is closed only when the last block and the
last access using it have ended, and at most `limit` folders are kept (a batch with a video per
folder walks the rest), well below the usual 1,024 descriptors per process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager


class _Generation:
    """The descriptors of one run of overlapping blocks, and how many are using them."""

    def __init__(self) -> None:
        self.fds: dict[tuple[str, ...], int] = {}
        self.users = 0


class HeldFolders:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._current: _Generation | None = None
        self._lock = threading.Lock()

    @contextmanager
    def holding(self) -> Iterator[None]:
        with self._lock:
            if self._current is None:
                self._current = _Generation()
            held = self._current
            held.users += 1
        try:
            yield
        finally:
            self._release(held)

    @contextmanager
    def folder(
        self, folder: tuple[str, ...], walk: Callable[[], AbstractContextManager[list[int]]]
    ) -> Iterator[int]:
        """The descriptor of `folder`: a kept one inside a `holding` block, else (and past the
        limit) the last of those `walk()` opens from the root, closed after the block."""
        with self._lock:
            held = self._current
            if held is not None and (folder in held.fds or len(held.fds) < self._limit):
                held.users += 1
            else:
                held = None
        if held is None:
            with walk() as fds:
                yield fds[-1]
            return
        try:
            fd = held.fds.get(folder)
            if fd is None:
                with walk() as fds, self._lock:
                    fd = held.fds.get(folder)
                    if fd is None:
                        fd = held.fds[folder] = os.dup(fds[-1])
            yield fd
        finally:
            self._release(held)

    def _release(self, held: _Generation) -> None:
        with self._lock:
            held.users -= 1
            if held.users:
                return
            if self._current is held:
                self._current = None
        for fd in held.fds.values():
            os.close(fd)
