"""Bounded inputs: a file is opened only when it is a regular file (a FIFO or a device is refused
before anything blocks on it) and read up to a size cap; an archive member is inflated in pieces,
refused before it is inflated when its declared size or compression ratio passes a cap, and cut
off if it inflates past what it declared.

Every refusal is a `BoundsError` (a ValueError) whose message is one sentence naming the file or
the archive member."""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Any

from kpdeliver.errors import DecodeError

MiB = 1 << 20
CONFIG_MAX_BYTES = 1 * MiB  # a client config is a few hundred bytes
SCHEMA_MAX_BYTES = 16 * MiB  # a CVAT XML giving a skeleton may carry its annotations too
INPUT_MAX_BYTES = (
    64 * 1024 * MiB
)  # an annotation file or table given on the command line (COCO's train set: 0.6 GiB)
MEMBER_MAX_BYTES = 1024 * MiB  # one annotation file inside an archive, inflated
MEMBER_MAX_RATIO = 200  # inflated / compressed; real exports compress at most about 50:1
RATIO_FLOOR_BYTES = 1 * MiB  # a member inflating to less is never refused for its ratio
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_OPEN = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class BoundsError(DecodeError, ValueError):
    """An input is not a regular file, or larger than its cap; the message names it, `problem` says
    the same without naming it (for a list of one file's problems)."""

    def __init__(self, message: str, problem: str = "") -> None:
        super().__init__(message)
        self.problem = problem or message


class NotRegular(BoundsError):
    """A FIFO, device, socket or folder where a file was expected; refused unopened or unread."""


class TooLarge(BoundsError):
    """A file or archive member larger than its cap; refused unread."""


def size_text(n: int) -> str:
    """'512 bytes', '1.5 MiB', '1.0 GiB'."""
    if n < 1024:
        return f"{n} bytes"
    value, unit = float(n), "bytes"
    for larger in ("KiB", "MiB", "GiB", "TiB"):
        value, unit = value / 1024, larger
        if value < 1024:
            break
    return f"{value:.1f} {unit}"


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _check(st: os.stat_result, path: str | Path, what: str, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise NotRegular(f"{what} {path} is {_kind(st.st_mode)}, not a regular file; refused unread")
    if st.st_size > limit:
        raise TooLarge(
            f"{what} {path} is {size_text(st.st_size)}, more than the {size_text(limit)} "
            f"a {what} may be; refused unread"
        )


def read_regular(path: str | Path, *, what: str, limit: int) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them. Anything else is refused
    before it is opened (opening a FIFO waits for a writer, opening a device may act on it); the
    open itself does not block and the descriptor is checked again, so what is read is what was
    checked. NotRegular or TooLarge; OSError (FileNotFoundError, ...) as the system raised it."""
    _check(os.stat(path), path, what, limit)
    fd = os.open(path, _OPEN)
    try:
        st = os.fstat(fd)
        _check(st, path, what, limit)
        os.set_blocking(fd, True)
        chunks, total = [], 0
        # the whole file and one byte more in the first read (one buffer, no join), unless it grows
        want = st.st_size + 1
        while total <= limit:
            chunk = os.read(fd, min(limit + 1 - total, max(want - total, 4 * MiB)))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew after fstat
            raise TooLarge(
                f"{what} {path} grew past the {size_text(limit)} a {what} may be while read; refused"
            )
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_yaml(path: Path, *, what: str, limit: int) -> Any:
    """The YAML document in the file `path` (a `what`: 'config file'), read with `read_regular`;
    BoundsError in one sentence when it cannot be read, is not UTF-8 YAML or nests too deeply."""
    import yaml

    try:
        return yaml.safe_load(read_regular(path, what=what, limit=limit).decode("utf-8"))
    except FileNotFoundError:
        raise BoundsError(f"{what} {path} does not exist", f"the {what} does not exist") from None
    except OSError as e:
        raise BoundsError(
            f"cannot read {what} {path}: {e.strerror}", f"cannot be read: {e.strerror}"
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise BoundsError(f"{what} {path} is not valid YAML{where}", f"not valid YAML{where}") from None
    except BoundsError as e:
        raise type(e)(str(e), f"the {what} {str(e).removeprefix(f'{what} {path} ')}") from None
    except (UnicodeDecodeError, RecursionError) as e:
        why = "is not UTF-8 text" if isinstance(e, UnicodeDecodeError) else "nests too deeply"
        raise BoundsError(f"{what} {path} {why}", f"the {what} {why}") from None


def link_out_of(folder: Path, given: str) -> Path | None:
    """Where the path `given` (relative to `folder`, or absolute) really leads, when a symbolic link
    met on the way takes it out of `folder`; None when no link does. For an absolute path only its
    own last part counts (the operator wrote the folders above it)."""
    lexical = Path(os.path.normpath(folder / given))
    real = lexical.resolve()
    if Path(given).is_absolute():
        lexical = Path(os.path.realpath(lexical.parent)) / lexical.name
    return real if real != lexical and not real.is_relative_to(folder) else None


def safe_name(name: str) -> str:
    """`name` when it can be one part of a path or key by itself (letters, digits and '.', '_', '-',
    '@', '+', starting with a letter or digit): it never climbs out of, or into, another folder."""
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} cannot name a folder: use letters, digits, '.', '_', '-', '@' or '+', "
            "starting with a letter or digit, at most 128 characters"
        )
    return name


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
        raise BoundsError(
            f"{where} is compressed with method {info.compress_type}; only stored and deflated "
            "members are read"
        )
    limit, packed = member_limit(info, archive_size), min(info.compress_size, archive_size)
    if info.file_size > limit:
        raise TooLarge(
            f"{where} would inflate to {size_text(info.file_size)} from {size_text(packed)} "
            f"({info.file_size / max(packed, 1):,.0f}:1); a member may inflate to at most "
            f"{size_text(MEMBER_MAX_BYTES)} and {MEMBER_MAX_RATIO}:1; not inflated"
        )
    chunks = []
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(MiB):
                chunks.append(chunk)
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        RuntimeError,
        NotImplementedError,
        ValueError,
    ) as e:
        raise BoundsError(f"{where} cannot be read ({type(e).__name__}: {e})") from None
    return b"".join(chunks)
