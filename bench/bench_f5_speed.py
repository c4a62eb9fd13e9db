"""Benchmark: our voice clone (``synthesize_clone``) vs f5-tts's own ``infer_process``.

Same process, same tiny random F5-TTS + Vocos (``tests/tiny_f5.py``: the package's own DiT/CFM
with small dims and the real mel settings), same reference, same reference text, same text,
same sampler settings (``--nfe`` steps, cfg 2, sway -1), same torch threads:

* ours: ``synthesize_clone(bundle, reference_48k, 48000, ref_text, text)`` - reference
  preparation, the package-rule chunking, one ``infer_batch_process`` call per chunk with a
  seed per chunk, cross-fade join.
* theirs: ``f5_tts.infer.utils_infer.infer_process(ref_wav, ref_text, text, model, vocoder)``
  on the reference we prepared (written as a 24 kHz WAV, so both condition on the same audio).
  torchaudio >= 2.9 loads files only through torchcodec, which is not installed; the bench
  gives the package a soundfile reader for that one ``torchaudio.load`` call.

Figure: real-time factor in CPU time (process CPU seconds per second of speech made, with
``--threads`` torch threads, default 1; smaller is faster). CPU time, not wall time: each call
takes about a second, and on a shared machine wall time of such short calls varies 2x between
identical runs, while CPU time does not. The ratio is theirs / ours (>= 1: ours at least as
fast), the median of back-to-back pairs with alternating order; target >= 0.9 (ours runs the
package's own code chunk by chunk, so only our wrapper's overhead may cost, at most 10 %).

On a GPU (``--device cuda``, used by ``bench/gpu.sh``) the figure is wall time instead, and
``--full`` builds the model at F5TTS_v1_Base's real size (the package's config: dim 1024, 22
layers) and Vocos at its released size, still with random weights.

Usage: ``python bench/bench_f5_speed.py [--nfe 8] [--sentences 4] [--reps 5] [--threads 1]
[--device cpu|cuda] [--full] [--json]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

from _media import FIXTURES, RATE
from _media import speech as media_speech
from _report import emit, median, row, skipped

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.9
#: Vocos as released (charactr/vocos-mel-24khz config.yaml), for ``--full``.
FULL_VOCOS_BACKBONE = {"input_channels": 100, "dim": 512, "intermediate_dim": 1536, "num_layers": 8}


def _soundfile_load(path, *_args, **_kwargs):
    """``torchaudio.load`` stand-in: ``(float32 [C, T] tensor, rate)`` via soundfile."""
    import soundfile
    import torch

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()), rate


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nfe", type=int, default=8, help="sampling steps per chunk")
    p.add_argument("--sentences", type=int, default=4, help="sentences of tiny_f5.LONG_TEXT to say")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda: wall time, not CPU time)")
    p.add_argument("--full", action="store_true", help="F5TTS_v1_Base and Vocos at their real sizes (random weights)")
    p.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    a = p.parse_args(argv)
    size = "F5TTS_v1_Base size" if a.full else "tiny"
    timer = "CPU" if a.device == "cpu" else "wall"
    stage = f"Voice clone (F5-TTS {size}, {a.device}), {timer} real-time factor"
    try:
        import f5_tts  # noqa: F401
    except ImportError:
        print("skipped: f5-tts not installed")
        if a.json:
            emit([skipped(stage, "f5-tts not installed", f">= {TARGET}")])
        return 0
    sys.path[:0] = [str(REPO / "custom_nodes"), str(REPO / "tests")]
    import soundfile
    import torch
    from f5_tts.infer import utils_infer
    import tiny_f5
    from tiny_f5 import LONG_TEXT, REF_TEXT, build_tiny_f5

    from myspinbot.speech import f5
    from myspinbot.speech.audio_io import load_audio

    text = " ".join(LONG_TEXT.split(". ")[: a.sentences]).strip()
    text = text if text.endswith(".") else text + "."
    if (FIXTURES / "speech_front_left.wav").is_file():
        reference, ref_rate = load_audio(FIXTURES / "speech_front_left.wav")
    else:  # a synthetic stand-in of the recording's length: the timing does not depend on the words
        reference, ref_rate = media_speech(1.5)[0], RATE
    torch.set_num_threads(a.threads)
    clock = time.process_time if a.device == "cpu" else time.perf_counter
    if a.full:  # build_tiny_f5 reads these module globals
        tiny_f5.TINY_ARCH = f5.package_config()["arch"]
        tiny_f5.TINY_VOCOS = {**tiny_f5.TINY_VOCOS, "backbone": {**tiny_f5.TINY_VOCOS["backbone"],
                                                                 "init_args": FULL_VOCOS_BACKBONE}}
        tiny_f5.TINY_VOCOS["head"] = {**tiny_f5.TINY_VOCOS["head"],
                                      "init_args": {**tiny_f5.TINY_VOCOS["head"]["init_args"], "dim": 512}}
    with tempfile.TemporaryDirectory(prefix="bench_f5_") as tmp:
        paths = build_tiny_f5(Path(tmp) / "models")
        bundle = f5.load_f5(paths["checkpoint"], paths["vocab"], paths["vocoder_dir"], device=a.device,
                            model_cfg=tiny_f5.TINY_ARCH)
        sr = int(bundle.sample_rate)
        ref_text = f5.normalise_ref_text(REF_TEXT)
        ref_wav = Path(tmp) / "reference_24k.wav"
        soundfile.write(str(ref_wav), f5.prepare_reference(reference, ref_rate, sr), sr)
        chunks = f5.plan_chunks(text, ref_text, soundfile.info(str(ref_wav)).duration, 1.0)
        utils_infer.torchaudio.load = _soundfile_load

        def ours() -> float:
            t0 = clock()
            wave, rate = f5.synthesize_clone(bundle, reference, ref_rate, REF_TEXT, text, nfe_step=a.nfe)
            return (clock() - t0) / (wave.shape[-1] / rate)

        def theirs() -> float:
            t0 = clock()
            with contextlib.redirect_stdout(io.StringIO()):  # the package prints every chunk
                wave, rate, _ = utils_infer.infer_process(
                    str(ref_wav), ref_text, text, bundle.model, bundle.vocoder, mel_spec_type=bundle.mel_spec_type,
                    show_info=lambda *_: None, progress=None, nfe_step=a.nfe, device=bundle.device)
            return (clock() - t0) / (len(wave) / rate)

        ours(), theirs()  # warm-up
        rtf: dict[str, list[float]] = {"ours": [], "theirs": []}
        for r in range(a.reps):
            for name, fn in ((("ours", ours), ("theirs", theirs)) if r % 2 == 0 else (("theirs", theirs), ("ours", ours))):
                rtf[name].append(fn())
            print(f"rep {r + 1}: real-time factor ours {rtf['ours'][-1]:.3f}, infer_process {rtf['theirs'][-1]:.3f}",
                  flush=True)
    ratio = median([t / o for o, t in zip(rtf["ours"], rtf["theirs"])])
    ok = ratio >= TARGET
    print(f"{len(chunks)} chunk(s), {a.nfe} steps: median RTF ours {median(rtf['ours']):.3f}, infer_process "
          f"{median(rtf['theirs']):.3f}; ratio theirs/ours {ratio:.3f} (target >= {TARGET}) -> {'PASS' if ok else 'FAIL'}")
    if a.json:
        emit([row(stage, f"RTF {median(rtf['ours']):.3f}", f"RTF {median(rtf['theirs']):.3f} (f5-tts infer_process)",
                  ratio, f">= {TARGET}", ok=ok, note=f"{len(chunks)} chunk(s), {a.nfe} steps")])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
