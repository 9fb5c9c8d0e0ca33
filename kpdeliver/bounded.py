"""Bounded inputs: a file is opened only when it is a regular file (a FIFO or a device is refused
before anything blocks on it) and read up to a size cap; an archive member is inflated in pieces,
refused before it is inflated when its declared size or compression ratio passes a cap, and cut
off if it inflates past what it declared.

Every refusal is a `BoundsError` (a ValueError) whose message is one sentence naming the file or
the archive member."""
from __future__ import annotations

import os
import stat
import zipfile
import zlib
from pathlib import Path

MiB = 1 << 20
CONFIG_MAX_BYTES = 1 * MiB  # a client config is a few hundred bytes
SCHEMA_MAX_BYTES = 16 * MiB  # a CVAT XML giving a skeleton may carry its annotations too
MEMBER_MAX_BYTES = 1024 * MiB  # one annotation file inside an archive, inflated
MEMBER_MAX_RATIO = 200  # inflated / compressed; real exports compress at most about 50:1
RATIO_FLOOR_BYTES = 1 * MiB  # a member inflating to less is never refused for its ratio
_OPEN = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class BoundsError(ValueError):
    """An input is not a regular file, or larger than its cap; the message names it."""


def size_text(n: int) -> str:
    """'512 bytes', '1.5 MiB', '1.0 GiB'."""
    if n < 1024:
        return f"{n} bytes"
    value, unit = float(n), "bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit}"


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular(path: str | Path, *, what: str, limit: int, follow_links: bool = True) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them. The file is opened without
    blocking (a FIFO's open would wait for a writer) and checked on its descriptor, so what is read
    is what was checked. BoundsError for anything but a regular file, or one larger than `limit`;
    OSError (FileNotFoundError, a link met with `follow_links=False`, ...) as the system raised it."""
    fd = os.open(path, _OPEN | (0 if follow_links else os.O_NOFOLLOW))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BoundsError(f"{what} {path} is {_kind(st.st_mode)}, not a regular file; refused unread")
        if st.st_size > limit:
            raise BoundsError(f"{what} {path} is {size_text(st.st_size)}, more than the {size_text(limit)} "
                              f"a {what} may be; refused unread")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(limit + 1 - total, 4 * MiB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew after fstat
            raise BoundsError(f"{what} {path} grew past the {size_text(limit)} a {what} may be while read; refused")
        return b"".join(chunks)
    finally:
        os.close(fd)


def member_limit(info: zipfile.ZipInfo, archive_size: int) -> int:
    """The most bytes `info` may inflate to: the size cap, and the ratio cap over what it can really
    hold compressed (its declared compressed size, never more than the whole archive)."""
    packed = max(1, min(info.compress_size, archive_size))
    return min(MEMBER_MAX_BYTES, max(RATIO_FLOOR_BYTES, MEMBER_MAX_RATIO * packed))


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, archive_size: int, source: str) -> bytes:
    """The inflated bytes of archive member `info` of the archive `source` (`archive_size` bytes).
    Refused (BoundsError naming archive and member) without inflating when its declared size passes
    `member_limit`; inflated in pieces, which zipfile cuts at the declared size, so a member holding
    more than it declares costs no more. Only stored and deflated members are read (what annotation
    tools write): bzip2 and LZMA inflate a whole read at once, whatever size is asked. A damaged or
    encrypted member is a BoundsError too."""
    where = f"{source}: archive member {info.filename!r}"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BoundsError(f"{where} is compressed with method {info.compress_type}; only stored and deflated "
                          "members are read")
    limit, packed = member_limit(info, archive_size), min(info.compress_size, archive_size)
    if info.file_size > limit:
        raise BoundsError(f"{where} would inflate to {size_text(info.file_size)} from {size_text(packed)} "
                          f"({info.file_size / max(packed, 1):,.0f}:1); a member may inflate to at most "
                          f"{size_text(MEMBER_MAX_BYTES)} and {MEMBER_MAX_RATIO}:1; not inflated")
    chunks = []
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(MiB):
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError) as e:
        raise BoundsError(f"{where} cannot be read ({type(e).__name__}: {e})") from None
    return b"".join(chunks)
