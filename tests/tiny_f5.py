"""Tiny randomly initialised F5-TTS and Vocos models for tests (tier 1 and tier 2).

Built from the ``f5-tts`` package's own ``DiT``/``CFM`` classes and ``vocos``' own classes
(small dims, the real mel settings: 24 kHz, 100 mels, hop 256) and saved like the real
downloads (EMA safetensors with ``ema_model.`` keys, the package's vocab.txt, a Vocos
``config.yaml``) in a ``models/`` tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import yaml

from myspinbot.speech import f5

SR, HOP = 24000, 256
TINY_ARCH = dict(dim=64, depth=2, heads=2, dim_head=32, ff_mult=2, text_dim=32, conv_layers=1,
                 text_mask_padding=True, qk_norm=None, pe_attn_head=None, attn_backend="torch",
                 attn_mask_enabled=False, checkpoint_activations=False)
TINY_VOCOS = {
    "feature_extractor": {"class_path": "vocos.feature_extractors.MelSpectrogramFeatures",
                          "init_args": {"sample_rate": SR, "n_fft": 1024, "hop_length": HOP, "n_mels": 100,
                                        "padding": "center"}},
    "backbone": {"class_path": "vocos.models.VocosBackbone",
                 "init_args": {"input_channels": 100, "dim": 32, "intermediate_dim": 64, "num_layers": 1}},
    "head": {"class_path": "vocos.heads.ISTFTHead",
             "init_args": {"dim": 32, "n_fft": 1024, "hop_length": HOP, "padding": "center"}},
}
REF_TEXT = "Front left"
LONG_TEXT = " ".join(f"This is sentence number {i + 1}." for i in range(40))




def randomise(module: torch.nn.Module, seed: int) -> None:
    """Random weights everywhere (the package zero-initialises some output layers)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)


def build_tiny_f5(root: Path, *, vocos_bin: bool = False, sidecar_config: bool = False) -> dict:
    """Write the tiny models under ``root`` (a ComfyUI ``models/`` folder).

    ``vocos_bin``: also save the vocoder as ``pytorch_model.bin`` (the released file name).
    ``sidecar_config``: write the tiny architecture as ``model_config.yaml`` beside the checkpoint,
    as a user does for a fine-tune whose architecture differs from F5TTS_v1_Base."""
    from importlib.resources import files

    from f5_tts.infer.utils_infer import get_tokenizer
    from f5_tts.model import CFM, DiT
    from safetensors.torch import save_file
    from vocos import Vocos

    model_dir = root / "f5_tts" / "F5TTS_v1_Base"
    vocoder_dir = root / "vocoders" / "vocos-mel-24khz"
    model_dir.mkdir(parents=True, exist_ok=True)
    vocoder_dir.mkdir(parents=True, exist_ok=True)

    vocab = model_dir / "vocab.txt"
    shutil.copyfile(str(files("f5_tts").joinpath("infer/examples/vocab.txt")), vocab)
    vocab_map, vocab_size = get_tokenizer(str(vocab), "custom")
    cfm = CFM(transformer=DiT(**TINY_ARCH, text_num_embeds=vocab_size, mel_dim=100),
              mel_spec_kwargs=dict(n_fft=1024, hop_length=HOP, win_length=1024, n_mel_channels=100,
                                   target_sample_rate=SR, mel_spec_type="vocos"),
              vocab_char_map=vocab_map)
    randomise(cfm, 1)
    # The EMA layout of the released checkpoint: ema_model.<key>, plus EMA's bookkeeping.
    ema = {f"ema_model.{k}": v.contiguous() for k, v in cfm.state_dict().items()}
    ema["initted"], ema["step"] = torch.tensor(True), torch.tensor(1250000)
    checkpoint = model_dir / "model_1250000.safetensors"
    save_file(ema, str(checkpoint))
    if sidecar_config:
        (model_dir / "model_config.yaml").write_text(yaml.safe_dump({"arch": TINY_ARCH}), encoding="utf-8")

    (vocoder_dir / "config.yaml").write_text(yaml.safe_dump(TINY_VOCOS), encoding="utf-8")
    vocos = Vocos.from_hparams(str(vocoder_dir / "config.yaml"))
    randomise(vocos, 2)
    save_file({k: v.contiguous() for k, v in vocos.state_dict().items()}, str(vocoder_dir / "model.safetensors"))
    if vocos_bin:
        torch.save(vocos.state_dict(), vocoder_dir / "pytorch_model.bin")
    return {"root": root, "checkpoint": checkpoint, "vocab": vocab, "vocoder_dir": vocoder_dir,
            "model_sd": cfm.state_dict(), "vocos_sd": vocos.state_dict()}


def expected_chunk_samples(ref_len: int, ref_text: str, chunk: str, speed: float) -> int:
    """F5's duration rule for one chunk: generated mel frames =
    ref_frames / ref_text_bytes * chunk_bytes / speed (speed 0.3 for chunks under 10 bytes;
    the package adds a space after a reference text ending in an ASCII character), and Vocos
    turns n frames into (n - 1) * hop samples."""
    ref_text = ref_text + " " if len(ref_text[-1].encode("utf-8")) == 1 else ref_text
    chunk_bytes = len(chunk.encode("utf-8"))
    local_speed = 0.3 if chunk_bytes < 10 else speed
    frames = int((ref_len // HOP) / len(ref_text.encode("utf-8")) * chunk_bytes / local_speed)
    return (frames - 1) * HOP


def expected_length(reference, text: str, speed: float, cross_fade_s: float) -> tuple[int, list[str]]:
    ref = f5.prepare_reference(reference[0], reference[1], SR)
    ref_text = f5.normalise_ref_text(REF_TEXT)
    chunks = f5.plan_chunks(text, ref_text, ref.shape[0] / SR, speed)
    lengths = [expected_chunk_samples(ref.shape[0], ref_text, c, speed) for c in chunks]
    fade = int(round(cross_fade_s * SR))
    overlaps = 0
    total = lengths[0]
    for n in lengths[1:]:
        overlaps += min(fade, total, n)
        total += n - min(fade, total, n)
    return sum(lengths) - overlaps, chunks
