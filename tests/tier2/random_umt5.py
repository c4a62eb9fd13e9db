"""A randomly initialised, full-size umt5-xxl text encoder in Comfy-Org's file layout, for tests.

ComfyUI's ``CLIPLoader`` (type ``wan``) recognises umt5-xxl by its key names and the
embedding's vocabulary size (256384) and always builds the fixed xxl configuration from
``comfy/text_encoders/umt5_config_xxl.json``, so no smaller model loads through that path.
This writes the real architecture with random weights: the key layout is taken from core's
own T5 class (built on the meta device), every weight is stored as float8_e4m3fn like
``umt5_xxl_fp8_e4m3fn_scaled.safetensors`` (about 5.7 GB), and a tiny SentencePiece model
trained here on a few sentences is embedded as the ``spiece_model`` byte tensor that core's
``WanT5Tokenizer`` reads from the checkpoint.

Usage: ``python tests/tier2/random_umt5.py OUT.safetensors`` (``COMFYUI_DIR`` must be set;
about 1-3 minutes and 11 GB of RAM on a CPU).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SENTENCES = [
    "a portrait of a person talking to the camera, calm, studio light",
    "blurry, low quality, distorted face, static, watermark",
    "the quick brown fox jumps over the lazy dog",
]


def _spiece_model() -> bytes:
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES * 50), model_writer=model, vocab_size=64, hard_vocab_limit=False,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, model_type="unigram", minloglevel=2)
    return model.getvalue()


def build_random_umt5(out: str | os.PathLike, seed: int = 0) -> Path:
    """Write the random umt5-xxl (fp8 weights + ``spiece_model``) to ``out``; returns its path."""
    comfy_dir = os.environ["COMFYUI_DIR"]
    if comfy_dir not in sys.path:
        sys.path.insert(0, comfy_dir)
    import safetensors.torch
    import torch
    from comfy.cli_args import args

    args.cpu = True  # before comfy.model_management is imported (via comfy.ops): no GPU probing
    import comfy.ops
    import comfy.text_encoders.t5 as t5

    config = json.loads((Path(comfy_dir) / "comfy" / "text_encoders" / "umt5_config_xxl.json").read_text())
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in t5.T5(config, torch.float32, "meta", comfy.ops.manual_cast).state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in shapes.items():
        if key.endswith("layer_norm.weight"):
            w = torch.ones(shape)
        elif key == "shared.weight":
            w = torch.randn(shape, generator=gen)
        elif "relative_attention_bias" in key:
            w = torch.randn(shape, generator=gen) * 0.1
        else:
            w = torch.randn(shape, generator=gen) * shape[-1] ** -0.5  # keeps activations at unit scale
        state[key] = w.to(torch.float8_e4m3fn)
        del w
    state["spiece_model"] = torch.frombuffer(bytearray(_spiece_model()), dtype=torch.uint8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(state, str(out))
    return out


if __name__ == "__main__":
    print(build_random_umt5(sys.argv[1]))
