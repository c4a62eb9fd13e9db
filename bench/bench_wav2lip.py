"""Benchmark: our Wav2Lip (generator and streaming engine) vs the authors' code, same weights.

Needs the authors' code exported outside the repo (``MYSPINBOT_WAV2LIP_REF``, default
``../ref/Wav2Lip``; see ``tests/tier1/test_wav2lip_reference.py``); without it prints skipped
rows. Same process, same random weights (the authors' ``models.Wav2Lip`` randomised, saved in
their checkpoint layout, loaded into ours with ``load_wav2lip``), same CPU, ``--threads`` torch
threads (default 1), same batch size (``--batch``, default 16, our engine's default):

* generator: ``model(mel [B, 1, 80, 16], faces [B, 6, 96, 96])``, ours vs theirs; frames per
  CPU second of the calling thread (stable on a shared machine).
* engine: ours = ``lip_sync`` on the fixture portrait (a still, 512²) and ``--seconds`` of fixture
  speech, file to file: audio decode, mel, one Haar detection for the still, per batch crop /
  generator / feathered paste, H.264 + AAC encode. Theirs = the per-batch work of their
  ``inference.py`` (imported with its own ``argparse`` flags: ``--static``, ``--box`` set to the
  box our detector found, so their S3FD detector - whose weights are not here - is not run):
  their ``datagen`` (resize, mask, concatenate), the tensor conversion, their model, their paste
  (``cv2.resize`` into the frame) and ``cv2.VideoWriter`` (DIVX AVI); their audio loading, mel,
  frame reading and final ffmpeg mux are outside the loop and not timed. Frames per second of
  wall time, median over alternating reps.

Ratios are ours / theirs (>= 1: ours at least as fast). Targets: both >= 1.0 (issue 11: faster
than the authors' code on the same CPU and checkpoint). Ours is loaded as the node loads it:
batch norms folded into the convolutions, weights channels-last; the engine encodes in a worker
thread while the generator makes the next batch, and encodes a still's face once per batch.

``--device cuda`` (used by ``bench/gpu.sh``) puts both generators on the GPU (their inference
module picks CUDA by itself when it is there); the generator figure is then wall time.

Usage: ``python bench/bench_wav2lip.py [--seconds 1.6] [--batch 16] [--reps 2] [--device cpu|cuda] [--json]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _media import RATE, portrait, speech
from _report import emit, median, row, skipped

REPO = Path(__file__).resolve().parents[1]
REF = Path(os.environ.get("MYSPINBOT_WAV2LIP_REF") or REPO.parent / "ref" / "Wav2Lip")
GEN_TARGET, ENGINE_TARGET = 1.0, 1.0


def _randomize(model, seed: int) -> None:
    """Random weights with sane batch-norm statistics (as the reference test does)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 1.5 + 0.5)
            elif name.endswith(("running_mean", "bias")):
                t.copy_(torch.rand(t.shape, generator=g) * 0.4 - 0.2)
            elif t.ndim == 1:
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (1.0 / t[0].numel()) ** 0.5)


def _import_theirs(argv: list[str]):
    """The authors' ``inference`` module (argparse run on ``argv``) and ``models`` package."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv, sys.path = ["inference.py", *argv], [str(REF), *sys.path]
    try:
        import inference  # noqa: PLC0415 - the authors' script, module-level argparse
        import models  # noqa: PLC0415
    finally:
        sys.argv, sys.path = saved_argv, saved_path
    return inference, models


def their_loop(inference, model, frames: list, mel_chunks: list, out_path: str, fps: float, device: str = "cpu") -> int:
    """The body of their ``main()`` from ``datagen`` on (their code, unchanged in substance)."""
    import cv2
    import numpy as np
    import torch

    h, w = frames[0].shape[:-1]
    out = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"DIVX"), fps, (w, h))
    n = 0
    for img_batch, mel_batch, batch_frames, coords in inference.datagen(frames.copy(), mel_chunks):
        img_batch = torch.FloatTensor(np.transpose(img_batch, (0, 3, 1, 2))).to(device)
        mel_batch = torch.FloatTensor(np.transpose(mel_batch, (0, 3, 1, 2))).to(device)
        with torch.no_grad():
            pred = model(mel_batch, img_batch)
        pred = pred.cpu().numpy().transpose(0, 2, 3, 1) * 255.0
        for p, f, c in zip(pred, batch_frames, coords):
            y1, y2, x1, x2 = c
            f[y1:y2, x1:x2] = cv2.resize(p.astype(np.uint8), (x2 - x1, y2 - y1))
            out.write(f)
            n += 1
    out.release()
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=1.6, help="speech length (frames = seconds x 25)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    a = p.parse_args(argv)
    if not (REF / "inference.py").is_file():
        why = "Wav2Lip reference code missing (MYSPINBOT_WAV2LIP_REF)"
        print(f"skipped: {why}")
        if a.json:
            emit([skipped("Wav2Lip generator forward", why, f">= {GEN_TARGET}"),
                  skipped("Wav2Lip engine", why, f">= {ENGINE_TARGET}")])
        return 0
    sys.path.insert(0, str(REPO / "custom_nodes"))
    import cv2
    import numpy as np
    import soundfile
    import torch

    from myspinbot.lipsync import LipSyncSettings, lip_sync, load_wav2lip, mel_windows, melspectrogram
    from myspinbot.lipsync.boxes import find_face_box
    from myspinbot.speech.audio_io import resample

    torch.set_num_threads(a.threads)
    image, _ = portrait()
    audio, _ = speech(a.seconds)
    x1, y1, x2, y2 = find_face_box(image)
    with tempfile.TemporaryDirectory(prefix="bench_wav2lip_") as tmp:
        tmp = Path(tmp)
        face_png, audio_wav = tmp / "face.png", tmp / "speech.wav"
        cv2.imwrite(str(face_png), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        soundfile.write(str(audio_wav), audio[0], RATE)
        inference, models = _import_theirs([
            "--checkpoint_path", str(tmp / "w.pth"), "--face", str(face_png), "--audio", str(audio_wav),
            "--static", "True", "--box", str(y1), str(y2), str(x1), str(x2), "--wav2lip_batch_size", str(a.batch)])
        theirs = models.Wav2Lip()
        _randomize(theirs, 11)
        theirs.eval()
        torch.save({"state_dict": {"module." + k: v for k, v in theirs.state_dict().items()}}, tmp / "w.pth")
        theirs.to(a.device)
        ours = load_wav2lip(tmp / "w.pth", device=a.device)

        # generator alone: CPU time of this thread on the CPU, synchronised wall time on a GPU
        on_gpu = a.device != "cpu"
        clock = time.perf_counter if on_gpu else time.thread_time
        sync = torch.cuda.synchronize if on_gpu else (lambda: None)
        g = torch.Generator().manual_seed(5)
        faces = torch.rand(a.batch, 6, 96, 96, generator=g).to(a.device)
        mels = (torch.rand(a.batch, 1, 80, 16, generator=g) * 8 - 4).to(a.device)
        gen_fps: dict[str, list[float]] = {"ours": [], "theirs": []}
        nets = {"ours": ours, "theirs": theirs}
        with torch.inference_mode():
            for net in nets.values():
                net(mels, faces)
            for r in range(a.reps * 2):
                for name in (("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")):
                    sync()
                    t0 = clock()
                    nets[name](mels, faces)
                    sync()
                    gen_fps[name].append(a.batch / (clock() - t0))

        # engine: ours file to file vs their per-batch loop
        mel_chunks = list(mel_windows(melspectrogram(resample(audio, RATE, 16000)[0]), 25.0))
        frames = [cv2.cvtColor(image, cv2.COLOR_RGB2BGR)]
        eng_fps: dict[str, list[float]] = {"ours": [], "theirs": []}

        def run_ours() -> float:
            t0 = time.perf_counter()
            res = lip_sync(ours, face_png, audio_wav, tmp / "ours.mp4", LipSyncSettings(batch_size=a.batch))
            return res.frames / (time.perf_counter() - t0)

        def run_theirs() -> float:
            t0 = time.perf_counter()
            n = their_loop(inference, theirs, frames, mel_chunks, str(tmp / "theirs.avi"), 25.0, a.device)
            return n / (time.perf_counter() - t0)

        run_ours(), run_theirs()  # warm-up
        for r in range(a.reps):
            for name, fn in ((("ours", run_ours), ("theirs", run_theirs)) if r % 2 == 0
                             else (("theirs", run_theirs), ("ours", run_ours))):
                eng_fps[name].append(fn())
            print(f"rep {r + 1}: engine fps ours {eng_fps['ours'][-1]:.1f}, theirs {eng_fps['theirs'][-1]:.1f}; "
                  f"generator fps (CPU) ours {gen_fps['ours'][2 * r]:.1f}, theirs {gen_fps['theirs'][2 * r]:.1f}",
                  flush=True)
    gen_ratio = median([o / t for o, t in zip(gen_fps["ours"], gen_fps["theirs"])])
    eng_ratio = median([o / t for o, t in zip(eng_fps["ours"], eng_fps["theirs"])])
    gen_ok, eng_ok = gen_ratio >= GEN_TARGET, eng_ratio >= ENGINE_TARGET
    print(f"generator: ours/theirs {gen_ratio:.3f} (target >= {GEN_TARGET}) -> {'PASS' if gen_ok else 'FAIL'}; "
          f"engine: ours/theirs {eng_ratio:.3f} (target >= {ENGINE_TARGET}) -> {'PASS' if eng_ok else 'FAIL'}")
    if a.json:
        emit([
            row(f"Wav2Lip generator forward, batch {a.batch}, {a.device}",
                f"{median(gen_fps['ours']):.1f} fps ({'wall' if on_gpu else 'CPU'} time)",
                f"{median(gen_fps['theirs']):.1f} fps (authors' model)", gen_ratio, f">= {GEN_TARGET}", ok=gen_ok),
            row(f"Wav2Lip engine, 512² still, file to file, {a.device}", f"{median(eng_fps['ours']):.1f} fps",
                f"{median(eng_fps['theirs']):.1f} fps (authors' per-batch loop)", eng_ratio, f">= {ENGINE_TARGET}",
                ok=eng_ok, note="ours includes audio decode, mel, detection, H.264+AAC; theirs only the loop"),
        ])
    return 0 if gen_ok and eng_ok else 1


if __name__ == "__main__":
    sys.exit(main())
