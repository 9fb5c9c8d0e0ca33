"""Why a store operation failed, said in one sentence that names the place and the cause.

The stores turn the operating system's errors (errno) and S3's error codes into a `StoreFault`
whose `cause` is one of the names below; the command line prints its message as the one line a person
reads, and orchestration retries only the faults that may pass (`transient`).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from kpdeliver.errors import one_line
from kpdeliver.storage.base import StorageError

DISK_FULL, READ_ONLY, PERMISSION = "disk full", "read-only", "permission denied"
ACCESS_DENIED, CHANGED, UNREACHABLE = "access denied", "changed under us", "unreachable"
NO_CREDENTIALS, NOT_FOUND, NOT_A_FOLDER = "no credentials", "not found", "not a folder"
TOO_LARGE, CORRUPTED, FAILED = "too large", "corrupted", "failed"

# errno -> (cause, what the person reads after "cannot <action> <location>: ")
_ERRNO = {
    errno.ENOSPC: (DISK_FULL, "the disk is full (no space left on the device)"),
    errno.EDQUOT: (DISK_FULL, "the disk quota is used up"),
    errno.EROFS: (READ_ONLY, "the file system is read-only"),
    errno.EACCES: (PERMISSION, "permission denied"),
    errno.EPERM: (PERMISSION, "permission denied (operation not permitted)"),
    errno.ENOTDIR: (NOT_A_FOLDER, "a part of the path is a file, not a folder"),
    errno.EEXIST: (NOT_A_FOLDER, "a file stands where a folder is needed"),
    errno.ENOENT: (NOT_FOUND, "it does not exist"),
    errno.EFBIG: (
        TOO_LARGE,
        "the file is larger than the file system (or this process's file size limit) allows",
    ),
    errno.ENAMETOOLONG: (TOO_LARGE, "the name is too long for the file system"),
    errno.EMFILE: (FAILED, "too many open files in this process"),
    errno.ENFILE: (FAILED, "too many open files on this machine"),
    errno.EIO: (FAILED, "input/output error (a failing disk or network file system)"),
    errno.ESTALE: (CHANGED, "the file was replaced on the network file system while in use"),
    errno.ENOTCONN: (UNREACHABLE, "the network file system is not connected"),
    errno.ETIMEDOUT: (UNREACHABLE, "the network file system did not answer in time"),
    errno.EHOSTDOWN: (UNREACHABLE, "the network file system's host is down"),
}
# S3 error code -> (cause, what the person reads)
_S3_CODES = {
    "AccessDenied": (ACCESS_DENIED, "access denied"),
    "403": (ACCESS_DENIED, "access denied"),
    "AllAccessDisabled": (ACCESS_DENIED, "access denied (all access to this object is disabled)"),
    "AccountProblem": (ACCESS_DENIED, "access denied (a problem with the AWS account)"),
    "InvalidAccessKeyId": (NO_CREDENTIALS, "the AWS access key id is not known to the server"),
    "SignatureDoesNotMatch": (NO_CREDENTIALS, "the AWS secret key does not match the access key id"),
    "ExpiredToken": (NO_CREDENTIALS, "the AWS session token has expired"),
    "InvalidToken": (NO_CREDENTIALS, "the AWS session token is not valid"),
    "NoSuchKey": (NOT_FOUND, "no such object"),
    "404": (NOT_FOUND, "no such object"),
    "NotFound": (NOT_FOUND, "no such object"),
    "PreconditionFailed": (
        CHANGED,
        "the object changed under us (a condition of the request no longer holds)",
    ),
    "QuotaExceeded": (DISK_FULL, "the storage quota is used up"),
    "EntityTooLarge": (TOO_LARGE, "the object is larger than the server accepts"),
}
_TRANSIENT_ERRNO = {errno.EIO, errno.ENOTCONN, errno.ETIMEDOUT, errno.EHOSTDOWN, errno.EMFILE, errno.ENFILE}


class StoreFault(StorageError):
    """A store operation failed for a reason outside kpdeliver; the message is one sentence naming
    the location and the cause, `cause` one of this module's names (DISK_FULL...), `transient` whether trying again may help."""

    def __init__(self, message: str, cause: str = FAILED, transient: bool = False) -> None:
        super().__init__(message, cause, transient)  # all in args: the fault pickles (Dask workers)
        self.cause, self.transient = cause, transient

    def __str__(self) -> str:
        return self.args[0]


def os_fault(e: OSError, action: str, location: str) -> StoreFault:
    """The StoreFault of an operating system error met while doing `action` at `location`."""
    cause, said = _ERRNO.get(e.errno or 0, (FAILED, (e.strerror or type(e).__name__).lower()))
    return StoreFault(f"cannot {action} {location}: {said}", cause, transient=e.errno in _TRANSIENT_ERRNO)


def s3_fault(code: str, status: int | None, message: str, action: str, location: str) -> StoreFault:
    """The StoreFault of an S3 error answer (`code` and HTTP `status`); unknown codes keep the
    server's own code and message, and server-side ones (5xx) may pass."""
    if code in _S3_CODES:
        cause, said = _S3_CODES[code]
        return StoreFault(f"cannot {action} {location}: {said} ({code})", cause)
    said = f"{code} (HTTP {status}) {message}".rstrip()
    return StoreFault(
        f"cannot {action} {location}: {said}", FAILED, transient=status is None or status >= 500
    )


@contextmanager
def os_errors(action: str, location: str) -> Iterator[None]:
    """Turns an OSError raised inside the block into the StoreFault naming `location`."""
    try:
        yield
    except OSError as e:
        raise os_fault(e, action, location) from None


def retryable(exc: BaseException) -> bool:
    """Whether a store task that raised `exc` is worth running again: not for a store's definite
    refusal (disk full, read-only, denied, changed under us, a missing or refused object)."""
    if isinstance(exc, StorageError):  # StoreFault and StoreUnreachable say; the others are refusals
        return bool(getattr(exc, "transient", False))
    return not isinstance(exc, OSError) or exc.errno not in _ERRNO or exc.errno in _TRANSIENT_ERRNO


def describe(exc: BaseException) -> str:
    """One line for a store failure: its own sentence, at most 500 characters, without the control
    characters (escape sequences included) a server's message may carry."""
    return one_line(str(exc)) or type(exc).__name__


__all__ = ["StoreFault", "describe", "os_errors", "os_fault", "retryable", "s3_fault"]
