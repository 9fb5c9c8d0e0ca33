"""Image files as the pipeline sees them: which names are images, their displayed size, and
whether their bytes decode.

Pillow is imported inside the functions: `kpdeliver convert` reads sizes only when an input lacks them."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from kpdeliver.errors import IngestError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Pillow format -> the extensions a file of that format may carry (phones write JPEGs as MPO)
FORMAT_EXTENSIONS = {
    "JPEG": (".jpg", ".jpeg"),
    "MPO": (".jpg", ".jpeg"),
    "PNG": (".png",),
    "BMP": (".bmp",),
    "WEBP": (".webp",),
    "TIFF": (".tif", ".tiff"),
}
_SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations that turn the stored image by 90 degrees
_FULL_DECODE_MAX_PIXELS = 4_000_000  # formats without a cheap check are decoded whole up to this size


@dataclass(frozen=True)
class ImageHeader:
    width: (
        int  # as displayed: EXIF orientations 5-8 swap the stored sides, as viewers, CVAT and Ultralytics do
    )
    height: int
    orientation: int  # the EXIF orientation tag, 1 when absent
    format: str  # Pillow's name of the format the bytes hold


class ImageProblem(IngestError, ValueError):
    """The bytes are not a deliverable image; `check` is the finding's check id."""

    def __init__(self, check: str, why: str) -> None:
        super().__init__(why)
        self.check = check


def _orientation(im, fmt: str) -> int:
    try:
        # a PNG's getexif() decodes every pixel to look past IDAT: only an early eXIf chunk counts
        exif = im.getexif() if fmt != "PNG" or "exif" in im.info else {}
        value = int(exif.get(0x0112, 1))
    except Exception:  # a malformed EXIF block leaves the pixels as stored
        return 1
    return value if value in range(1, 9) else 1


def read_image_header(data: bytes, *, check_decode: bool = True) -> ImageHeader:
    """The displayed size, orientation and format of an image, after checking it decodes.

    JPEGs are decoded in draft mode (DCT scaling, about 1/64 of the work) so truncation shows;
    PNGs are verified chunk by chunk (CRCs, up to IEND) without inflating pixels; other formats
    are decoded whole only when small. Raises ImageProblem."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height, fmt = *im.size, im.format or "?"
                orientation = _orientation(im, fmt)  # from the header, before verify() spends the handle
                if not check_decode:
                    pass
                elif fmt in ("JPEG", "MPO"):
                    im.draft("RGB", (max(width // 8, 1), max(height // 8, 1)))
                    im.load()
                elif fmt != "PNG" and width * height <= _FULL_DECODE_MAX_PIXELS:
                    im.load()
                else:
                    im.verify()
    except Image.DecompressionBombError as e:  # not an OSError: it would otherwise end the run
        raise ImageProblem("ingest.image_too_large", f"refused: {e}") from None
    except Image.UnidentifiedImageError:
        raise ImageProblem("ingest.unreadable_image", "not a readable image (unknown format)") from None
    except (
        Exception
    ) as e:  # Pillow's decoders raise OSError, SyntaxError, ValueError, EOFError... on bad bytes
        raise ImageProblem("ingest.corrupt_image", f"does not decode ({type(e).__name__}: {e})") from None
    if orientation in _SWAPS_SIDES:
        width, height = height, width
    return ImageHeader(width, height, orientation, fmt)


def image_size(image: Path | bytes) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), from the header of an image file
    or its bytes; no pixels are decoded. An unreadable image raises ImageProblem (a ValueError)."""
    data = image if isinstance(image, bytes) else Path(image).read_bytes()
    header = read_image_header(data, check_decode=False)
    return header.width, header.height
