"""F5-TTS voice cloning on the ``f5-tts`` package's own model and inference code.

- ``load_f5(checkpoint, vocab, vocoder_dir, device, model_cfg)`` → ``F5Bundle`` (the package's
  ``load_model`` and ``load_vocoder``); ``get_f5`` is the cached form, ``release`` drops it.
- ``synthesize_clone(bundle, ref_audio, ref_sr, ref_text, text, ...)`` → ``(float32 [1, T], 24000)``.
- ``prepare_reference`` and ``plan_chunks`` expose the reference trimming and text chunking.

No ComfyUI imports. Nothing heavy at import time: ``f5_tts`` (and torch) are imported on first
use. The F5-TTS v1 weights are licensed CC-BY-NC-4.0 (non-commercial use only).
"""

from .loader import (
    DEFAULT_MODEL,
    SAMPLE_RATE,
    F5Bundle,
    cache_key,
    cached_bundles,
    get_f5,
    load_f5,
    load_vocos,
    model_config_for,
    package_config,
    release,
)
from .reference import MAX_REF_SECONDS, prepare_reference
from .synth import (
    DEFAULT_CROSS_FADE_S,
    DEFAULT_NFE_STEPS,
    cross_fade_join,
    max_chunk_chars,
    normalise_ref_text,
    plan_chunks,
    synthesize_clone,
)

__all__ = [
    "DEFAULT_CROSS_FADE_S",
    "DEFAULT_MODEL",
    "DEFAULT_NFE_STEPS",
    "MAX_REF_SECONDS",
    "SAMPLE_RATE",
    "F5Bundle",
    "cache_key",
    "cached_bundles",
    "cross_fade_join",
    "get_f5",
    "load_f5",
    "load_vocos",
    "max_chunk_chars",
    "normalise_ref_text",
    "model_config_for",
    "package_config",
    "plan_chunks",
    "prepare_reference",
    "release",
    "synthesize_clone",
]
