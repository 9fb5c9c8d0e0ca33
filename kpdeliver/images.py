"""Image files as the pipeline sees them: which names are images, and their size from the header."""
from __future__ import annotations

import io
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def image_size(image: Path | bytes) -> tuple[int, int]:
    """(width, height) from the header of an image file or its bytes; Pillow decodes no pixels for
    `.size`. An unreadable image raises OSError (Pillow's UnidentifiedImageError is one)."""
    from PIL import Image  # here, not at the top: `kpdeliver convert` reads sizes only when an input lacks them

    with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as im:
        return im.size
