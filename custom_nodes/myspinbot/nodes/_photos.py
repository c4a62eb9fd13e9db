"""Photos from a folder under ComfyUI's ``input/`` for the LoRA trainer: listed first, read one
at a time (the dataset preparation keeps only the crops)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidInputError

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def list_folder_photos(input_dir: str | os.PathLike, folder: str) -> list[Path]:
    """The photo files in ``input_dir/folder`` (not recursive), in name order.

    Raises:
        InvalidInputError: the folder is outside ``input_dir``, missing, or has no photos.
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
    return files


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """One photo as uint8 ``[H, W, 3]`` RGB, EXIF orientation applied.

    Raises:
        InvalidInputError: the file cannot be read as an image.
    """
    try:
        with Image.open(path) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"), dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as err:
        raise InvalidInputError(f"cannot read the photo {Path(path).name}: {err}") from err


def iter_photos(paths: list[Path]) -> Iterator[np.ndarray]:
    """:func:`read_photo` of each path, lazily."""
    for path in paths:
        yield read_photo(path)
