"""Sampling one InfiniteTalk window with core's samplers (helpers of the InfiniteTalk node).

Core's InfiniteTalk audio cross-attention patch (``MultiTalkCrossAttnPatch``) handles one batch
item; :class:`PerItemAudioPatch` makes it work with the batched cond/uncond passes of CFG and
leaves the audio out of the "no audio" pass of audio CFG. :func:`sample_window` samples with
core's KSampler path, or with core's ``Guider_DualCFG`` when an audio CFG is set.
"""

from __future__ import annotations

import math

import torch

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils

#: Tokens of a zero text conditioning: core's umt5 tokenizer for Wan pads every prompt to 512.
ZERO_TEXT_TOKENS = 512


class PerItemAudioPatch:
    """Wraps core's InfiniteTalk cross-attention patch (``MultiTalkCrossAttnPatch``).

    Core's patch handles one batch item (its audio tokens are reshaped with batch 1), but the
    sampler batches cond and uncond together when memory allows, so with CFG > 1 it fails. This
    calls it once per batch item and leaves out the audio for the conds whose index (in the
    sampler's ``cond_or_uncond`` list) is in ``no_audio`` - the "no audio" pass of audio CFG.
    """

    def __init__(self, inner, no_audio: tuple[int, ...] = ()):
        self.inner = inner
        self.no_audio = frozenset(no_audio)

    def __call__(self, kwargs):
        x = kwargs["x"]
        options = kwargs.get("transformer_options", {})
        conds = list(options.get("cond_or_uncond") or [])
        if x.shape[0] == 1 and not (conds and conds[0] in self.no_audio):
            return self.inner(kwargs)
        per = x.shape[0] // len(conds) if conds and x.shape[0] % len(conds) == 0 else 1
        parts = []
        for i in range(x.shape[0]):
            cond = conds[i // per] if conds and i // per < len(conds) else None
            item = x[i:i + 1]
            parts.append(item if cond in self.no_audio else self.inner({**kwargs, "x": item}))
        return torch.cat(parts, dim=0)

    def models(self):
        return self.inner.models() if hasattr(self.inner, "models") else []


def wrap_audio_patch(model, no_audio: tuple[int, ...]) -> None:
    """Replace core's InfiniteTalk ``attn2_patch`` entries of ``model`` (a clone made by core) with
    :class:`PerItemAudioPatch` wrappers. Raises ``RuntimeError`` when core added none."""
    from comfy.ldm.wan.model_multitalk import MultiTalkCrossAttnPatch

    patches = model.model_options.setdefault("transformer_options", {}).setdefault("patches", {})
    found = False
    wrapped = []
    for p in patches.get("attn2_patch", []):
        if isinstance(p, MultiTalkCrossAttnPatch):
            p, found = PerItemAudioPatch(p, no_audio), True
        wrapped.append(p)
    if not found:
        raise RuntimeError("core's WanInfiniteTalkToVideo did not add its audio cross-attention patch")
    patches["attn2_patch"] = wrapped


def zero_text_conditioning(model, tokens: int = ZERO_TEXT_TOKENS) -> list:
    """CONDITIONING of zeros ``[1, tokens, text_dim]``, ``text_dim`` read from the Wan model (its
    ``text_embedding`` takes umt5-xxl features, 4096 wide): the conditioning to use without a text
    encoder (what core's ConditioningZeroOut makes of an encoded prompt, minus the encoder)."""
    dm = model.model.diffusion_model
    text_dim = getattr(dm, "text_dim", None)
    if text_dim is None:
        text_dim = dm.text_embedding[0].in_features
    return [[torch.zeros(1, tokens, int(text_dim)), {}]]


def sample_window(model, positive, negative, latent: dict, *, steps: int, cfg: float, audio_cfg: float,
                  sampler_name: str, scheduler: str, seed: int, callback):
    """Sample one window's latent (``latent["samples"]``) with core's samplers; returns the
    denoised latent tensor. ``callback(step, x0, x, total_steps)`` is core's sampler callback."""
    latent_image = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
    noise = comfy.sample.prepare_noise(latent_image, seed)
    disable_pbar = not comfy.utils.PROGRESS_BAR_ENABLED
    if math.isclose(audio_cfg, 1.0):
        # plain CFG (audio in both passes): core's KSampler path
        wrap_audio_patch(model, ())
        return comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                                   callback=callback, disable_pbar=disable_pbar, seed=seed)
    # InfiniteTalk's two guidances: uncond(no text, no audio) + audio_cfg * (no text, audio - uncond)
    # + cfg * (text, audio - no text, audio); core's Guider_DualCFG computes exactly this with
    # (positive, middle, negative) = (positive, negative with audio, negative without audio).
    from comfy_extras.nodes_custom_sampler import Guider_DualCFG

    wrap_audio_patch(model, (0,))  # Guider_DualCFG batches [negative, middle, positive]: index 0 = no audio
    guider = Guider_DualCFG(model)
    guider.set_conds(positive, negative, negative)
    guider.set_cfg(cfg, audio_cfg, nested=False)
    ksampler = comfy.samplers.KSampler(model, steps=steps, device=model.load_device, sampler=sampler_name,
                                       scheduler=scheduler, denoise=1.0, model_options=model.model_options)
    samples = guider.sample(noise, latent_image, comfy.samplers.sampler_object(sampler_name), ksampler.sigmas,
                            callback=callback, disable_pbar=disable_pbar, seed=seed)
    return samples.to(device=comfy.model_management.intermediate_device(),
                      dtype=comfy.model_management.intermediate_dtype())
