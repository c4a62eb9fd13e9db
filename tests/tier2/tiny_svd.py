"""The smallest Stable Video Diffusion checkpoint ComfyUI's ``ImageOnlyCheckpointLoader`` detects,
with random weights, in the layout of ``svd.safetensors`` (for the opt-in heavy tier-2 test).

Core matches ``supported_models.SVD_img2vid`` only for a UNet with 320 model channels, 8 input
channels (noise + the picture's latent), a linear ``proj_in``, transformer depth
``[1, 1, 1, 1, 1, 1, 0, 0]`` (four levels of two res blocks, no transformer at the lowest),
cross-attention context 1024, a 768-wide ``label_emb`` (fps / motion bucket / augmentation
embeddings) and the temporal layers (``time_stack`` / ``time_mixer``). The smallest such UNet
keeps every level at 320 channels (``channel_mult [1, 1, 1, 1]``; the real one: [1, 2, 4, 4]):
about 212 M parameters. The image encoder under ``conditioner.embedders.0.open_clip.model.visual.``
is always OpenCLIP ViT-H/14 (core picks its config by the number of layers: 32 = ViT-H, 632 M),
and the video VAE (``first_stage_model.``, found by ``decoder.mid.block_1.mix_factor``) always
core's fixed configuration (128 channels, [1, 2, 4, 4], a temporal decoder). In fp16 the file is
about 1.9 GB; ComfyUI holds it in about 4 GB of RAM.

The key layouts come from core's classes built on the ``meta`` device (``UNetModel``,
``AutoencodingEngine`` with the ``VideoDecoder``) and from OpenCLIP's visual-tower naming for the
image encoder (the names core's ``clip_vision.convert_to_transformers`` converts); the values are
seeded random (``tiny_sd15.random_state_dict``: fan-in scaled, unit gains, zero biases, a zero
UNet output convolution). ComfyUI must be importable (``COMFYUI_DIR``).

Usage: ``python tests/tier2/tiny_svd.py OUT.safetensors [--check]``
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_sd15 import ensure_comfy_on_path, random_state_dict  # noqa: E402

UNET_CONFIG = {
    "image_size": 32, "in_channels": 8, "out_channels": 4, "model_channels": 320, "num_res_blocks": [2, 2, 2, 2],
    "channel_mult": [1, 1, 1, 1], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], "transformer_depth_middle": 1,
    "context_dim": 1024, "num_heads": -1, "num_head_channels": 64, "use_linear_in_transformer": True,
    "use_spatial_transformer": True, "legacy": False, "num_classes": "sequential", "adm_in_channels": 768,
    "use_checkpoint": False, "extra_ff_mix_layer": True, "use_spatial_context": True,
    "merge_strategy": "learned_with_images", "merge_factor": 0.0, "video_kernel_size": [3, 1, 1],
    "use_temporal_resblock": True, "use_temporal_attention": True, "disable_temporal_crossattention": False,
}
"""SVD's UNet blocks with every level at 320 channels."""

PREFIX_UNET = "model.diffusion_model."
PREFIX_VISUAL = "conditioner.embedders.0.open_clip.model.visual."
PREFIX_VAE = "first_stage_model."


def visual_shapes(root: Path) -> dict[str, torch.Size]:
    """OpenCLIP ViT-H/14 visual tower (core's ``clip_vision_config_h.json`` sizes), OpenCLIP names."""
    cfg = json.loads((root / "comfy" / "clip_vision_config_h.json").read_text())
    width, mlp, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    patch, tokens = cfg["patch_size"], (cfg["image_size"] // cfg["patch_size"]) ** 2 + 1
    shapes = {"class_embedding": (width,), "positional_embedding": (tokens, width),
              "conv1.weight": (width, 3, patch, patch), "ln_pre.weight": (width,), "ln_pre.bias": (width,),
              "ln_post.weight": (width,), "ln_post.bias": (width,), "proj": (width, cfg["projection_dim"])}
    for i in range(layers):
        block = f"transformer.resblocks.{i}."
        shapes.update({block + "ln_1.weight": (width,), block + "ln_1.bias": (width,),
                       block + "attn.in_proj_weight": (3 * width, width), block + "attn.in_proj_bias": (3 * width,),
                       block + "attn.out_proj.weight": (width, width), block + "attn.out_proj.bias": (width,),
                       block + "ln_2.weight": (width,), block + "ln_2.bias": (width,),
                       block + "mlp.c_fc.weight": (mlp, width), block + "mlp.c_fc.bias": (mlp,),
                       block + "mlp.c_proj.weight": (width, mlp), block + "mlp.c_proj.bias": (width,)})
    return {PREFIX_VISUAL + k: torch.Size(v) for k, v in shapes.items()}


def layout() -> dict[str, torch.Size]:
    """Key -> shape of the whole checkpoint: UNet, image encoder, video VAE."""
    root = ensure_comfy_on_path()
    import comfy.ops
    from comfy.ldm.models.autoencoder import AutoencodingEngine
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    encoder = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
               "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
    decoder = {**encoder, "video_kernel_size": [3, 1, 1], "alpha": 0.0}  # as core's VAE builds it (comfy/sd.py)
    with torch.device("meta"):
        unet = UNetModel(**UNET_CONFIG, operations=comfy.ops.disable_weight_init)
        vae = AutoencodingEngine(
            regularizer_config={"target": "comfy.ldm.models.autoencoder.DiagonalGaussianRegularizer"},
            encoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Encoder", "params": encoder},
            decoder_config={"target": "comfy.ldm.modules.temporal_ae.VideoDecoder", "params": decoder})
    shapes = {PREFIX_UNET + k: v.shape for k, v in unet.state_dict().items()}
    shapes.update({PREFIX_VAE + k: v.shape for k, v in vae.state_dict().items()})
    shapes.update(visual_shapes(root))
    return shapes


def build_tiny_svd(out: str | os.PathLike, *, seed: int = 0, overwrite: bool = False) -> Path:
    """Write the checkpoint (fp16) to ``out``; returns its path. An existing file is kept unless ``overwrite``."""
    from safetensors.torch import save_file

    path = Path(out)
    if path.exists() and not overwrite:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    state = random_state_dict(layout(), seed)
    for key in [k for k in state if k.endswith("mix_factor")]:
        state[key] = torch.zeros_like(state[key])  # temporal mixing: learned blend weights start at 0.5
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"format": "pt", "made_by": "myspinbot tests/tier2/tiny_svd.py (random weights)"})
    tmp.replace(path)
    return path


def check_with_core(path: str | os.PathLike) -> dict:
    """What core's ``ImageOnlyCheckpointLoader`` path makes of ``path``."""
    ensure_comfy_on_path()
    import comfy.sd

    model, _, vae, clip_vision = comfy.sd.load_checkpoint_guess_config(str(path), output_vae=True, output_clip=False,
                                                                        output_clipvision=True)
    return {"model_config": type(model.model.model_config).__name__,
            "unet_parameters": sum(p.numel() for p in model.model.diffusion_model.parameters()),
            "vae": type(vae.first_stage_model).__name__, "clip_vision": clip_vision is not None}


if __name__ == "__main__":
    target = build_tiny_svd(sys.argv[1], overwrite=True)
    print(f"wrote {target} ({target.stat().st_size / 1e9:.2f} GB)")
    if "--check" in sys.argv[2:]:
        print(check_with_core(target))
