"""Conversions between ComfyUI's tensor types and the engines' numpy arrays."""

from __future__ import annotations

import numpy as np
import torch


def image_to_uint8(image: torch.Tensor, index: int = 0) -> np.ndarray:
    """ComfyUI IMAGE ``[B,H,W,C]`` float 0..1 → one ``uint8 [H,W,C]`` frame (``index`` of the batch)."""
    frame = image[index].detach().to("cpu", torch.float32).clamp(0.0, 1.0)
    return (frame.numpy() * 255.0 + 0.5).astype(np.uint8)


def audio_to_numpy(audio: dict) -> tuple[np.ndarray, int]:
    """ComfyUI AUDIO ``{"waveform": [B,C,T], "sample_rate"}`` → (``float32 [C,T]`` of batch item 0, sample rate in Hz)."""
    waveform = audio["waveform"]
    samples = waveform[0].detach().to("cpu", torch.float32).numpy()
    return np.ascontiguousarray(samples), int(audio["sample_rate"])


def numpy_to_audio(samples: np.ndarray, sample_rate: int) -> dict:
    """``float32 [C,T]`` samples → ComfyUI AUDIO with batch size 1."""
    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).unsqueeze(0)
    return {"waveform": waveform, "sample_rate": int(sample_rate)}
