"""Folder exports inside an archive (a Supervisely project downloaded as .tar or .zip), and tar
archives read member by member under a size cap.

A format whose codec sets `folder_files` is found in an archive by its marker file (the shallowest
one whose bytes its `sniff_metadata` accepts) and decoded from the members under the marker's
folder, exactly as it is read from a folder on disk."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterable
from posixpath import basename

from kpdeliver.bounded import MEMBER_MAX_BYTES, MEMBER_MAX_RATIO, RATIO_FLOOR_BYTES, size_text
from kpdeliver.codecs import CodecError, Decoded
from kpdeliver.codecs.protocol import Codec, DecodeOptions
from kpdeliver.schema import KeypointSchema


def is_tar(data: bytes) -> bool:
    """A tar archive (`ustar` magic) or a gzip stream (a .tar.gz, opened as such at decode)."""
    return data[257:262] == b"ustar" or data[:2] == b"\x1f\x8b"


def folder_export(
    codecs: Iterable[Codec],
    names: list[str],
    read: Callable[[str], bytes],
    *,
    source: str,
    schema: KeypointSchema | None,
    annotator: str,
    category: str | None = None,
) -> Decoded | None:
    """The folder export among an archive's member `names`, decoded; None when there is none."""
    for c in codecs:
        if c.folder_files is None or c.sniff_metadata is None:
            continue
        markers = sorted(
            (n for n in names if basename(n) in c.folder_markers), key=lambda n: (n.count("/"), n)
        )
        for marker in markers:
            data = read(marker)
            if not c.sniff_metadata(basename(marker), data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")):
                continue
            root = marker[: len(marker) - len(basename(marker))]
            files = {
                n[len(root) :]: read(n)
                for n in names
                if n.startswith(root) and c.folder_files(n[len(root) :])
            }
            return c.decode(
                data,
                DecodeOptions(
                    schema=schema,
                    annotator=annotator,
                    source=f"{source}!{marker}",
                    files=files,
                    category=category,
                ),
            )
    return None


def tar_members(data: bytes, source: str) -> tuple[list[str], Callable[[str], bytes]]:
    """The regular files of a tar (or .tar.gz) archive and a reader of one of them, which refuses a
    member past `MEMBER_MAX_BYTES`, or members read together past `MEMBER_MAX_RATIO` times the
    archive's own size (beyond `RATIO_FLOOR_BYTES`): a CodecError naming it, the member unread."""
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 (in memory; read by the closure below)
        members = {m.name.removeprefix("./"): m for m in tf.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        raise CodecError(f"{source}: broken tar archive ({e})") from None
    read_so_far = [0]

    def read(name: str) -> bytes:
        m = members[name]
        read_so_far[0] += m.size
        total_cap = max(RATIO_FLOOR_BYTES, MEMBER_MAX_RATIO * len(data))
        if m.size > MEMBER_MAX_BYTES or read_so_far[0] > total_cap:
            raise CodecError(
                f"{source}: archive member {name!r} would inflate to {size_text(m.size)} "
                f"({size_text(read_so_far[0])} with the members before it, from this {size_text(len(data))} archive), past "
                f"{MEMBER_MAX_RATIO}:1 or {size_text(MEMBER_MAX_BYTES)}; refused, not inflated"
            )
        try:
            fh = tf.extractfile(m)
            return fh.read(m.size) if fh is not None else b""
        except (tarfile.TarError, OSError, EOFError, ValueError) as e:
            raise CodecError(f"{source}: archive member {name!r} is damaged ({e})") from None

    return sorted(members), read
