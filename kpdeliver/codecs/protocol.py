"""The one shape every format takes: how it is recognised, decoded, encoded, and how its own
metadata defines a schema. Each folder under `kpdeliver/codecs/` exposes one `Codec` as `CODEC`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from kpdeliver.codecs import Decoded
    from kpdeliver.model import Dataset
    from kpdeliver.schema import KeypointSchema


@dataclass(frozen=True)
class EncodeOptions:
    """What a writer may be asked for; each format reads the options that concern it."""

    split_of: np.ndarray | None = None  # per image row: train / val / test (YOLO folders)
    outside: str = "clip"  # YOLO: a v=1 point outside the frame is clipped to the edge or written 0 0 0
    cvat_mode: str = "images"  # CVAT: "images" or "video" (skeleton tracks)


@dataclass(frozen=True)
class DecodeOptions:
    """What a reader may hand a decoder; each format reads the options that concern it (as
    `EncodeOptions`), and none takes options it does not name."""

    schema: KeypointSchema | None = None  # None: the export's own keypoint names define it
    annotator: str = ""
    source: str = ""  # the file the findings name
    metadata: bytes | None = (
        None  # the format's own metadata beside the export (a Label Studio labeling config)
    )
    sizes: Mapping[str, tuple[int, int]] | None = (
        None  # image reference -> (width, height), from image headers
    )
    files: Mapping[str, bytes] | None = None  # a folder export's files (YOLO: the label files)
    image_names: Mapping[str, str] | None = None  # a folder export's image names by label stem (YOLO)
    category: str | None = None  # the keypoint category to read from an export that holds several


class Decode(Protocol):
    def __call__(self, data: bytes, options: DecodeOptions = ...) -> Decoded:
        """Bytes of one export -> the canonical model (for a folder export, `data` is its marker:
        YOLO's data.yaml, Supervisely's meta.json)."""


@dataclass(frozen=True)
class Codec:
    """One keypoint format.

    - `name`: as the CLI spells it (`--to coco`).
    - `sniff(name, head) -> float`: confidence 0..1 that a file (its name and first bytes) is an
      export of this format; never a full parse.
    - `decode`: see `Decode`.
    - `encode(dataset, options) -> {relative path: bytes}`: the files a writer puts in a folder.
    - `sniff_metadata(name, head) -> bool`: the file is this format's metadata, not annotations.
    - `schema_from_metadata(data, *, source) -> KeypointSchema`: a schema from the format's own
      metadata (CVAT skeleton label, Label Studio labeling config), where it has one.
    - `folder_markers`: file names that make a folder one export of this format (YOLO data.yaml).
    - `needs_image_sizes`: its regions may lack image sizes, so the reader passes `sizes`.
    - `near_miss(name) -> str | None`: why a file its users may take for an export of this
      format is none (an iBUG .pts beside COCO files), said when no format reads it.
    - `folder_files(rel) -> bool`: which files of a folder export (path relative to the folder
      holding the marker) the decoder is handed as `files`, the marker's bytes as `data`; a
      format that sets it is read the same way from a folder and from inside an archive.
    """

    name: str
    sniff: Callable[[str, bytes], float]
    decode: Decode
    encode: Callable[[Dataset, EncodeOptions], dict[str, bytes]]
    sniff_metadata: Callable[[str, bytes], bool] | None = None
    schema_from_metadata: Callable[..., KeypointSchema] | None = None
    folder_markers: tuple[str, ...] = ()
    needs_image_sizes: bool = False
    folder_files: Callable[[str], bool] | None = None
    near_miss: Callable[[str], str | None] | None = None


def lazy_attributes(package: str, public: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` (PEP 562) that imports a codec folder's submodule only when one of
    its public names is first asked for: `public` maps name -> submodule (relative to `package`,
    or absolute when dotted), so sniffing a file never loads a decoder."""
    import importlib

    def __getattr__(name: str):
        module = public.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module if "." in module else f"{package}.{module}"), name)

    return __getattr__
