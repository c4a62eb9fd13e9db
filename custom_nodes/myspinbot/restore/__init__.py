"""Face restoration engine: align a face to the FFHQ template, restore it with a spandrel
face model (GFPGAN, RestoreFormer++), paste it back feathered, tracked over video frames.

Imports no ComfyUI module.
"""

from .faces import CROP_SIZE, TEMPLATE_512, FaceRestorer, FaceTracker, face_points, similarity_transform
from .model import check_face_model, face_restore_fn

__all__ = [
    "CROP_SIZE",
    "TEMPLATE_512",
    "FaceRestorer",
    "FaceTracker",
    "check_face_model",
    "face_points",
    "face_restore_fn",
    "similarity_transform",
]
