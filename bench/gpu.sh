#!/usr/bin/env bash
# Full-size, random-weight benchmarks on one CUDA GPU (made for one H200; about 10 minutes).
#
#   COMFYUI_DIR=/path/to/ComfyUI bash bench/gpu.sh            # run everything, print one table
#   COMFYUI_DIR=... bash bench/gpu.sh --only infinitetalk     # one stage (run_all.py's --only)
#
# What runs (bench/run_all.py --gpu; each stage in its own process, each with a time limit):
#   1. F5-TTS voice clone: F5TTS_v1_Base size (dim 1024, 22 layers) + Vocos at release size,
#      random weights, 32 NFE steps, ~12 sentences: our synthesize_clone vs f5-tts's own
#      infer_process, real-time factor (wall).                                   ~1-2 min
#   2. ESRGAN x4 (RealESRGAN_x4plus size: 64 filters, 23 RRDB blocks), 512 -> 2048, 16 frames:
#      Upscale Video vs core ImageUpscaleWithModel + CreateVideo/SaveVideo, fps, in ComfyUI's GPU
#      mode (fp32, as core loads upscale models).                                ~1-2 min
#   3. Wav2Lip (the official generator size), batch 128, 8 s at 25 fps: generator fps and the
#      file-to-file engine vs the authors' inference loop (needs MYSPINBOT_WAV2LIP_REF, else
#      skipped rows).                                                            ~1 min
#   4. SadTalker renderer (the official 256 and 512 sizes), 8 and 4 frames: ours vs the
#      authors' make_animation on the same random weights, seconds per frame and peak VRAM
#      (needs MYSPINBOT_SADTALKER_REF, else skipped rows).                       ~1 min
#   5. InfiniteTalk: one 81-frame window at 832x480, 4 steps, cfg 1, fp16, on a Wan2.1 I2V 14B
#      DiT with random weights built in GPU memory (28 GB) plus full-size patch / VAE / wav2vec2
#      written to $GPU_SCRATCH (~6 GB); seconds per window and peak VRAM.         ~4-5 min
#
# Setup: the GPU machine has no network. It needs a Python with CUDA torch and the pack's
# requirements (requirements.txt, requirements-f5.txt, f5-tts --no-deps) and ComfyUI's
# requirements: set PYTHON to it (default: .venv/bin/python if present, else python3). With
# --setup the script pip-installs those requirement files first (only where an index is
# reachable). Fixture media are read from ../shared/fixtures when present, else synthetic speech
# and a drawn face are used (bench/_media.py): the timings do not depend on the content.
# Nothing is downloaded: every model is built from its architecture with random weights.
# Outputs go to a temporary folder under $GPU_SCRATCH (default /tmp), removed afterwards.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"

if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO_DIR/.venv/bin/python" ]; then PYTHON="$REPO_DIR/.venv/bin/python"; else PYTHON=python3; fi
fi
export GPU_SCRATCH="${GPU_SCRATCH:-/tmp}"
export TMPDIR="$GPU_SCRATCH"

ARGS=()
SETUP=0
for arg in "$@"; do
  case "$arg" in
    --setup) SETUP=1 ;;
    *) ARGS+=("$arg") ;;
  esac
done

if [ "$SETUP" = 1 ]; then
  "$PYTHON" -m pip install -q -r requirements.txt -r requirements-f5.txt
  "$PYTHON" -m pip install -q --no-deps f5-tts==1.1.22
  if [ -n "${COMFYUI_DIR:-}" ]; then "$PYTHON" -m pip install -q -r "$COMFYUI_DIR/requirements.txt"; fi
fi

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("gpu.sh: torch sees no CUDA device (torch %s)" % torch.__version__)
print("torch", torch.__version__, "CUDA", torch.version.cuda, "device", torch.cuda.get_device_name(0))
EOF
if [ -z "${COMFYUI_DIR:-}" ]; then
  echo "gpu.sh: COMFYUI_DIR is not set: the ESRGAN and InfiniteTalk stages will print skipped rows" >&2
fi

# The whole run is bounded by the per-stage limits in run_all.py (150 + 150 + 120 + 330 s).
exec "$PYTHON" bench/run_all.py --gpu ${ARGS[@]+"${ARGS[@]}"}
