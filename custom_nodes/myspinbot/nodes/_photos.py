"""Photos from a folder under ComfyUI's ``input/`` for the LoRA trainer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidInputError

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def load_folder_photos(input_dir: str | os.PathLike, folder: str) -> tuple[list[np.ndarray], list[str]]:
    """The photos in ``input_dir/folder`` (not recursive), in name order, as uint8 ``[H, W, 3]``
    RGB (EXIF orientation applied), with their file names.

    Raises:
        InvalidInputError: the folder is outside ``input_dir``, missing, has no photos, or a
            photo cannot be read.
    """
    root = Path(input_dir).resolve()
    path = (root / folder).resolve()
    if path != root and root not in path.parents:
        raise InvalidInputError(f"folder '{folder}' is outside ComfyUI's input folder")
    if not path.is_dir():
        raise InvalidInputError(f"folder '{folder}' not found in ComfyUI's input folder ({root})")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not files:
        raise InvalidInputError(f"folder '{folder}' holds no photos ({', '.join(PHOTO_SUFFIXES)})")
    photos = []
    for file in files:
        try:
            with Image.open(file) as img:
                photos.append(np.asarray(ImageOps.exif_transpose(img).convert("RGB"), dtype=np.uint8).copy())
        except (OSError, UnidentifiedImageError) as err:
            raise InvalidInputError(f"cannot read the photo {file.name}: {err}") from err
    return photos, [f.name for f in files]
