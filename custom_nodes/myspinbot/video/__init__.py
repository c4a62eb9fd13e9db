"""Video engine: streaming MP4 writing (H.264 + AAC), probing, frame and audio reading.

Imports no ComfyUI module.
"""

from ..speech.audio_io import load_audio  # one decoder for audio of any media file
from .probe import probe_media
from .reader import iter_video_frames
from .sizing import check_even_size, even_size
from .writer import Mp4Writer, fps_fraction

__all__ = ["Mp4Writer", "check_even_size", "even_size", "fps_fraction", "iter_video_frames", "load_audio", "probe_media"]
