"""Character LoRA training, the parts without ComfyUI: dataset preparation (face crops,
duplicates, flips), captions with the trigger word, and the LoRA file's metadata.

Imports no ComfyUI module.
"""

from .captions import DEFAULT_TEMPLATE, captions_for, check_trigger
from .dataset import (DROP_DUPLICATE, DROP_NO_FACE, DatasetSettings, Dropped, PreparedDataset, crop_face, dhash, find_face,
                      face_crop_box, hash_distance, prepare_dataset)

__all__ = [
    "DEFAULT_TEMPLATE",
    "DROP_DUPLICATE",
    "DROP_NO_FACE",
    "DatasetSettings",
    "Dropped",
    "PreparedDataset",
    "captions_for",
    "check_trigger",
    "crop_face",
    "dhash",
    "face_crop_box",
    "find_face",
    "hash_distance",
    "prepare_dataset",
]
