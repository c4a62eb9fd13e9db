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

Usage: ``python bench/bench_f5_speed.py [--nfe 8] [--sentences 4] [--reps 5] [--threads 1] [--json]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

from _media import FIXTURES
from _report import emit, median, row, skipped

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.9
STAGE = "Voice clone (F5-TTS tiny), CPU real-time factor"


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
    p.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    a = p.parse_args(argv)
    try:
        import f5_tts  # noqa: F401
    except ImportError:
        print("skipped: f5-tts not installed")
        if a.json:
            emit([skipped(STAGE, "f5-tts not installed", f">= {TARGET}")])
        return 0
    sys.path[:0] = [str(REPO / "custom_nodes"), str(REPO / "tests")]
    import soundfile
    import torch
    from f5_tts.infer import utils_infer
    from tiny_f5 import LONG_TEXT, REF_TEXT, TINY_ARCH, build_tiny_f5

    from myspinbot.speech import f5
    from myspinbot.speech.audio_io import load_audio

    text = " ".join(LONG_TEXT.split(". ")[: a.sentences]).strip()
    text = text if text.endswith(".") else text + "."
    reference, ref_rate = load_audio(FIXTURES / "speech_front_left.wav")
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="bench_f5_") as tmp:
        paths = build_tiny_f5(Path(tmp) / "models")
        bundle = f5.load_f5(paths["checkpoint"], paths["vocab"], paths["vocoder_dir"], device="cpu", model_cfg=TINY_ARCH)
        sr = int(bundle.sample_rate)
        ref_text = f5.normalise_ref_text(REF_TEXT)
        ref_wav = Path(tmp) / "reference_24k.wav"
        soundfile.write(str(ref_wav), f5.prepare_reference(reference, ref_rate, sr), sr)
        chunks = f5.plan_chunks(text, ref_text, soundfile.info(str(ref_wav)).duration, 1.0)
        utils_infer.torchaudio.load = _soundfile_load

        def ours() -> float:
            t0 = time.process_time()
            wave, rate = f5.synthesize_clone(bundle, reference, ref_rate, REF_TEXT, text, nfe_step=a.nfe)
            return (time.process_time() - t0) / (wave.shape[-1] / rate)

        def theirs() -> float:
            t0 = time.process_time()
            with contextlib.redirect_stdout(io.StringIO()):  # the package prints every chunk
                wave, rate, _ = utils_infer.infer_process(
                    str(ref_wav), ref_text, text, bundle.model, bundle.vocoder, mel_spec_type=bundle.mel_spec_type,
                    show_info=lambda *_: None, progress=None, nfe_step=a.nfe, device=bundle.device)
            return (time.process_time() - t0) / (len(wave) / rate)

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
        emit([row(STAGE, f"RTF {median(rtf['ours']):.3f}", f"RTF {median(rtf['theirs']):.3f} (f5-tts infer_process)",
                  ratio, f">= {TARGET}", ok=ok, note=f"{len(chunks)} chunk(s), {a.nfe} steps")])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
