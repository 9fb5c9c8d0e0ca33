"""Inputs named on the command line (an annotation file, a sizes table, pre-labels), read from
regular files only: a named pipe or a device is refused in one sentence, never opened and waited on."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from kpdeliver.bounded import INPUT_MAX_BYTES, BoundsError, read_regular
from kpdeliver.codecs import CodecError


def read_input(f: Path, what: str = "annotation file") -> bytes:
    """A local input's bytes, from a regular file only: a named pipe or a device is refused in one
    sentence (a CodecError), never opened and waited on."""
    try:
        return read_regular(f, what=what, limit=INPUT_MAX_BYTES)
    except BoundsError as e:
        raise CodecError(str(e)) from None


def read_size_table(path: Path) -> dict[str, tuple[int, int]]:
    """`file_name -> (width, height)` from a CSV (columns file_name, width, height) or a JSON object
    `{"file_name": [width, height]}`; ValueError naming the file when it is unusable."""
    try:
        if not Path(path).is_file():
            raise ValueError("not a regular file")
        if Path(path).suffix.lower() == ".json":
            import orjson

            return {str(k): (int(v[0]), int(v[1])) for k, v in orjson.loads(Path(path).read_bytes()).items()}
        import pyarrow.csv as pcsv

        t = pcsv.read_csv(path)
        return dict(zip(t["file_name"].to_pylist(), zip(t["width"].to_pylist(), t["height"].to_pylist())))
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, pa.ArrowInvalid) as e:
        raise ValueError(
            f"sizes file {path} is unusable (want CSV file_name,width,height or JSON {{name: [w, h]}}): {e}"
        ) from None
