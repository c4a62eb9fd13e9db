"""A tiny random Stable Diffusion 1.5 checkpoint that ComfyUI's ``CheckpointLoaderSimple`` detects
as SD1.5, in the original single-file key layout (tier-2 tests; the LoRA trainer's tests reuse it).

One ``.safetensors`` file with the three parts of ``v1-5-pruned-emaonly.safetensors``:

=========================================  ===========================================================
prefix                                     what
=========================================  ===========================================================
``model.diffusion_model.``                 the UNet (LDM ``openaimodel`` layout): 320 model channels
                                           (core's SD15 config matches only 320), ONE level
                                           (``channel_mult [1]``) with one res block and one spatial
                                           transformer (8 heads, conv ``proj_in``, cross-attention
                                           context 768, which SD15 also requires), a middle block,
                                           two output blocks. About 26 M parameters (the real one:
                                           860 M).
``cond_stage_model.transformer.text_model.``  CLIP ViT-L/14's text encoder at full size (768 wide, 12
                                           layers, 49408 tokens, 77 positions: 123 M parameters):
                                           core always builds this fixed configuration for SD1.5, so
                                           no smaller one loads. No ``text_projection`` (SD1.5 files
                                           have none; SD1.5 uses the hidden states).
``first_stage_model.``                     a TAESD (``taesd_encoder.*``, ``taesd_decoder.*``,
                                           ``vae_scale``, ``vae_shift``; 2.4 M): with these keys
                                           core's ``VAE`` builds its tiny autoencoder instead of the
                                           83 M KL VAE, and SD1.5's latent format (4 channels, x8).
=========================================  ===========================================================

Detection (``comfy/model_detection.py``): the UNet prefix is the one most keys start with
(``model.diffusion_model.``); ``detect_unet_config`` reads model channels and the input channels
from ``input_blocks.0.0.weight``, levels from ``input_blocks.N.0.op`` downsamplers (none here),
the transformer depth and ``context_dim`` from ``...1.transformer_blocks.0.attn2.to_k.weight``, a
conv ``proj_in`` as ``use_linear_in_transformer=False``; ``supported_models.SD15`` matches on
those. The key layouts come from core's own classes (``UNetModel``, ``clip_model.CLIPTextModel``
with ``sd1_clip_config.json``, ``taesd.TAESD``) built on the ``meta`` device; the values are
ours: seeded normal weights scaled by fan-in, unit norm gains, zero biases, and a zero UNet
output convolution (so sampling stays finite). ComfyUI must be importable (``COMFYUI_DIR``).

Usage::

    path = build_tiny_sd15(models_root / "checkpoints" / "tiny_sd15.safetensors")
    python tests/tier2/tiny_sd15.py OUT.safetensors [--check]
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import torch

UNET_CONFIG = {
    "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 320, "num_res_blocks": [1],
    "channel_mult": [1], "transformer_depth": [1], "transformer_depth_output": [1, 1],
    "transformer_depth_middle": 1, "context_dim": 768, "num_heads": 8, "num_head_channels": -1,
    "use_linear_in_transformer": False, "use_spatial_transformer": True, "legacy": False,
    "adm_in_channels": None, "use_checkpoint": False,
}
"""The tiny UNet: SD1.5's block types and widths, one level instead of four."""

PREFIX_UNET = "model.diffusion_model."
PREFIX_CLIP = "cond_stage_model.transformer."
PREFIX_VAE = "first_stage_model."
FILE_NAME = "tiny_sd15.safetensors"


def ensure_comfy_on_path() -> Path:
    """Put ``$COMFYUI_DIR`` first on ``sys.path`` (in CPU mode) and return it."""
    root = os.environ.get("COMFYUI_DIR")
    if not root:
        raise RuntimeError("COMFYUI_DIR is not set: the tiny checkpoint takes its layouts from ComfyUI's classes")
    if root not in sys.path:
        sys.path.insert(0, root)
    from comfy.cli_args import args

    args.cpu = True  # before comfy.model_management is imported: no GPU probing
    return Path(root)


def _shapes(module: torch.nn.Module) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in module.state_dict().items()}


def layout() -> dict[str, torch.Size]:
    """Key -> shape of the whole checkpoint (UNet, CLIP-L text encoder, TAESD), original SD1.5 prefixes."""
    root = ensure_comfy_on_path()
    import comfy.clip_model
    import comfy.ops
    import comfy.taesd.taesd
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    ops = comfy.ops.disable_weight_init
    clip_config = json.loads((root / "comfy" / "sd1_clip_config.json").read_text())
    with torch.device("meta"):
        unet = UNetModel(**UNET_CONFIG, operations=ops)
        clip = comfy.clip_model.CLIPTextModel(clip_config, torch.float32, "meta", ops)
        taesd = comfy.taesd.taesd.TAESD()
    shapes = {PREFIX_UNET + k: s for k, s in _shapes(unet).items()}
    shapes.update({PREFIX_CLIP + k: s for k, s in _shapes(clip).items() if k.startswith("text_model.")})
    shapes.update({PREFIX_VAE + k: s for k, s in _shapes(taesd).items()})
    return shapes


def random_state_dict(shapes: dict[str, torch.Size], seed: int = 0, dtype=torch.float16) -> dict[str, torch.Tensor]:
    """Seeded random tensors for ``{key: shape}``: norm gains 1, biases 0, weights N(0, 1/fan_in),
    the UNet's output convolution 0, ``vae_scale`` 1 / ``vae_shift`` 0."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        leaf = key.rsplit(".", 1)[-1]
        if key.endswith("vae_scale"):
            t = torch.ones(shape)
        elif leaf == "bias" or key.endswith("vae_shift") or key.startswith(PREFIX_UNET + "out.2."):
            t = torch.zeros(shape)
        elif leaf == "weight" and len(shape) == 1:  # LayerNorm / GroupNorm gains
            t = torch.ones(shape)
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
            t = torch.randn(shape, generator=gen) / math.sqrt(max(1, fan_in))
        out[key] = t.to(dtype).contiguous()
    return out


def build_tiny_sd15(out: str | os.PathLike, *, seed: int = 0, overwrite: bool = False) -> Path:
    """Write the tiny checkpoint to ``out`` (fp16, about 300 MB, most of it the text encoder);
    returns its path. An existing file is kept unless ``overwrite``."""
    from safetensors.torch import save_file

    path = Path(out)
    if path.exists() and not overwrite:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    state = random_state_dict(layout(), seed)
    # CLIP's position ids 0..76 (int64), as the original files carry them
    state[PREFIX_CLIP + "text_model.embeddings.position_ids"] = torch.arange(77, dtype=torch.int64)[None]
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp),
              metadata={"format": "pt", "made_by": "myspinbot tests/tier2/tiny_sd15.py (random weights)"})
    tmp.replace(path)
    return path


def unet_parameters(shapes: dict[str, torch.Size] | None = None) -> int:
    """Number of UNet parameters in the layout."""
    shapes = shapes if shapes is not None else layout()
    return sum(math.prod(s) for k, s in shapes.items() if k.startswith(PREFIX_UNET))


def check_with_core(path: str | os.PathLike) -> dict:
    """Load ``path`` with core's ``load_checkpoint_guess_config`` (the loader node's path) and
    report what core made of it: model class, UNet config, VAE class, text encoder."""
    ensure_comfy_on_path()
    import comfy.sd

    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(str(path), output_vae=True, output_clip=True)
    config = model.model.model_config
    return {"model_config": type(config).__name__, "unet_parameters": sum(p.numel() for p in model.model.diffusion_model.parameters()),
            "context_dim": config.unet_config["context_dim"], "vae": type(vae.first_stage_model).__name__,
            "clip": type(clip.cond_stage_model).__name__}


if __name__ == "__main__":
    target = build_tiny_sd15(sys.argv[1], overwrite=True)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB, UNet {unet_parameters() / 1e6:.1f} M parameters)")
    if "--check" in sys.argv[2:]:
        print(check_with_core(target))
