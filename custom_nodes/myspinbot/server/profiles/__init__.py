"""Character profiles: photos → a trained LoRA and reference photo, plus a cleaned voice clip
with its transcript; jobs name a ready profile instead of a portrait and a voice sample.

``service.ProfileService`` creates, reads, edits and deletes them (training is an ordinary
``train_profile`` job); ``training.TrainingObserver`` settles a profile when its training job ends.
"""

from .service import MAX_PHOTOS, ProfileService
from .training import TrainingObserver

__all__ = ["MAX_PHOTOS", "ProfileService", "TrainingObserver"]
