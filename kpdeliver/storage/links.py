"""Folder entries the local store refuses or cleans up, by descriptor: the error for a key that
passes through a symbolic link (or names no regular file), and the link and unlink helpers."""

from __future__ import annotations

import os
import stat

from kpdeliver.storage.base import StorageError


def remove_if_present(name: str, dir_fd: int) -> None:
    """Unlink `name` in the folder `dir_fd`; gone already is fine."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def is_link(name: str, dir_fd: int) -> bool:
    """Whether `name` in the folder `dir_fd` is a symbolic link (False when it cannot be read)."""
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


class LinkError(StorageError):
    """A key passes through a symbolic link (or names something that is not a regular file)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message, key)  # both in args: the error pickles (Dask workers)
        self.key = key  # the link itself, which may be a folder above the key asked for

    def __str__(self) -> str:
        return self.args[0]
