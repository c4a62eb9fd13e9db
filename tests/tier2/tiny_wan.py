"""Builder of tiny random checkpoints for the InfiniteTalk stack (tier 2 and the bench).

Writes safetensors files into a ComfyUI-style models tree, one file per folder that core's
loaders read:

=====================  ==========================================  =====================================
folder                 file                                        what (shapes)
=====================  ==========================================  =====================================
``diffusion_models/``  ``tiny_wan21_i2v.safetensors``              Wan2.1 I2V DiT: dim 160, 1 head
                                                                   (head dim 160), 2 blocks, ffn 320,
                                                                   in_dim 36 (16 noise + 4 mask + 16
                                                                   image latent), out_dim 16, text dim
                                                                   4096, CLIP-vision ``img_emb``
                                                                   (1280 -> 160). ~3.3 M params.
``model_patches/``     ``tiny_infinitetalk.safetensors``           InfiniteTalk (MultiTalk) patch:
                                                                   ``audio_proj`` (12 x 768 wav2vec2
                                                                   layers in, intermediate 32, 32
                                                                   tokens of 32) + 40 audio
                                                                   cross-attention blocks of dim 160.
                                                                   ~6 M params.
``audio_encoders/``    ``random_wav2vec2_base.safetensors``        wav2vec2-base at full size (768, 12
                                                                   layers, 12 heads), random weights
                                                                   from ``transformers``, fp16 (~190 MB).
``vae/``               ``tiny_wan21_vae.safetensors``              Wan2.1 video VAE layout with base
                                                                   width 8 instead of 96 (z 16, x8
                                                                   space, x4 time). ~60 k params.
=====================  ==========================================  =====================================

Why dim 160 and not 128: core's detection sets ``num_heads = dim // 128`` (so dim >= 128), and
core's InfiniteTalk patch hard-codes 40 heads in every audio cross-attention block
(``WanMultiTalkAttentionBlock``), whose ``view(..., 40, dim // 40)`` needs ``dim % 40 == 0``;
the patch's ``norm_x`` runs on the DiT's hidden states, so the patch dim is the DiT dim. The
smallest dim that both accept is 160. The patch also always has 40 blocks (core builds
``num_layers=40`` and loads strictly), although a 2-block DiT only calls blocks 0 and 1.

The layouts (key names and shapes) come from core's own module classes, built on the
``meta`` device (so nothing is allocated), plus ``transformers``' ``Wav2Vec2Model`` for the
audio encoder; the values are ours: seeded normal weights scaled by fan-in, unit norm gains,
zero biases. ComfyUI must be importable (``COMFYUI_DIR`` on ``sys.path``) for the DiT, patch
and VAE layouts.

Usage::

    paths = build_tiny_models(models_root)   # dict: kind -> Path
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

WAN_DIM = 160
WAN_FFN = 320
WAN_LAYERS = 2
WAN_IN_DIM = 36
TEXT_DIM = 4096
CLIP_VISION_DIM = 1280
CLIP_VISION_TOKENS = 257
PATCH_INTERMEDIATE = 32
PATCH_TOKEN_DIM = 32
VAE_DIM = 8

FILES = {
    "diffusion_model": ("diffusion_models", "tiny_wan21_i2v.safetensors"),
    "model_patch": ("model_patches", "tiny_infinitetalk.safetensors"),
    "audio_encoder": ("audio_encoders", "random_wav2vec2_base.safetensors"),
    "vae": ("vae", "tiny_wan21_vae.safetensors"),
}


def ensure_comfy_on_path() -> Path:
    """Put ``$COMFYUI_DIR`` first on ``sys.path`` (in CPU mode) and return it."""
    root = os.environ.get("COMFYUI_DIR")
    if not root:
        raise RuntimeError("COMFYUI_DIR is not set: the tiny models take their layouts from ComfyUI's classes")
    if root not in sys.path:
        sys.path.insert(0, root)
    from comfy.cli_args import args

    args.cpu = True
    return Path(root)


def _random_state_dict(shapes: dict[str, torch.Size], seed: int, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """Seeded random tensors for ``{key: shape}``: gains 1, biases 0, weights N(0, 1/fan_in)."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        leaf = key.rsplit(".", 1)[-1]
        is_norm = leaf == "gamma" or (leaf == "weight" and len(shape) == 1)  # LayerNorm / RMSNorm gains
        if leaf in ("bias", "beta"):
            t = torch.zeros(shape)
        elif is_norm:
            t = torch.ones(shape)
        elif "modulation" in key:
            t = torch.randn(shape, generator=gen) * 0.02
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
            t = torch.randn(shape, generator=gen) / math.sqrt(max(1, fan_in))
        out[key] = t.to(dtype).contiguous()
    return out


def _shapes(module: torch.nn.Module) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in module.state_dict().items()}


def wan_i2v_shapes() -> dict[str, torch.Size]:
    """Key -> shape of a Wan2.1 I2V DiT with the tiny dims (core's ``WanModel`` on ``meta``)."""
    ensure_comfy_on_path()
    import comfy.ldm.wan.model
    import comfy.ops

    with torch.device("meta"):
        model = comfy.ldm.wan.model.WanModel(
            model_type="i2v", patch_size=(1, 2, 2), in_dim=WAN_IN_DIM, dim=WAN_DIM, ffn_dim=WAN_FFN,
            freq_dim=256, text_dim=TEXT_DIM, out_dim=16, num_heads=max(1, WAN_DIM // 128), num_layers=WAN_LAYERS,
            qk_norm=True, cross_attn_norm=True, eps=1e-6, operations=comfy.ops.disable_weight_init)
    return _shapes(model)


def infinitetalk_patch_shapes() -> dict[str, torch.Size]:
    """Key -> shape of an InfiniteTalk patch for the tiny DiT (core's ``MultiTalkModelPatch``)."""
    ensure_comfy_on_path()
    import comfy.ops
    from comfy_extras.nodes_model_patch import MultiTalkModelPatch

    with torch.device("meta"):
        patch = MultiTalkModelPatch(audio_window=5, intermediate_dim=PATCH_INTERMEDIATE, in_dim=WAN_DIM,
                                    out_dim=PATCH_TOKEN_DIM, context_tokens=32, vae_scale=4,
                                    operations=comfy.ops.disable_weight_init)
    return _shapes(patch)


def wan_vae_shapes() -> dict[str, torch.Size]:
    """Key -> shape of a Wan2.1 VAE with base width ``VAE_DIM`` (core's ``WanVAE``)."""
    ensure_comfy_on_path()
    import comfy.ldm.wan.vae

    with torch.device("meta"):
        vae = comfy.ldm.wan.vae.WanVAE(dim=VAE_DIM, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                                       temperal_downsample=[False, True, True], image_channels=3,
                                       conv_out_channels=3, dropout=0.0)
    return _shapes(vae)


def wav2vec2_base_state_dict(seed: int = 3) -> dict[str, torch.Tensor]:
    """A randomly initialised wav2vec2-base (``transformers`` default config), fp16."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(seed)
    config = Wav2Vec2Config()  # base: 768 wide, 12 layers, 12 heads, group-norm conv stack, post-LN
    model = Wav2Vec2Model(config).eval()
    return {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}


def build_tiny_models(models_root: str | os.PathLike, *, seed: int = 0, overwrite: bool = False) -> dict[str, Path]:
    """Write the four checkpoints under ``models_root`` (skipping files that exist unless
    ``overwrite``); returns ``{"diffusion_model"|"model_patch"|"audio_encoder"|"vae": path}``."""
    root = Path(models_root)
    paths = {kind: root / folder / name for kind, (folder, name) in FILES.items()}
    builders = {
        "diffusion_model": lambda: _random_state_dict(wan_i2v_shapes(), seed + 1),
        "model_patch": lambda: _random_state_dict(infinitetalk_patch_shapes(), seed + 2),
        "audio_encoder": lambda: wav2vec2_base_state_dict(seed + 3),
        "vae": lambda: _random_state_dict(wan_vae_shapes(), seed + 4),
    }
    for kind, path in paths.items():
        if path.exists() and not overwrite:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file(builders[kind](), str(tmp), metadata={"format": "pt", "made_by": "myspinbot tests/tier2/tiny_wan.py (random weights)"})
        tmp.replace(path)
    return paths


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models_root")
    parser.add_argument("--overwrite", action="store_true")
    a = parser.parse_args()
    for kind, p in build_tiny_models(a.models_root, overwrite=a.overwrite).items():
        print(f"{kind}: {p} ({p.stat().st_size / 1e6:.1f} MB)")
