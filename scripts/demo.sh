#!/usr/bin/env bash
# One command: set everything up, run a lite job in a headless ComfyUI, write out/demo.mp4.
# Uses $COMFYUI_DIR when set; otherwise clones ComfyUI into .demo/ComfyUI (needs internet).
set -euo pipefail
REPO_DIR="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${COMFYUI_DIR:-}" ]; then
  COMFYUI_DIR="$REPO_DIR/.demo/ComfyUI"
  if [ ! -f "$COMFYUI_DIR/main.py" ]; then
    git clone --depth 1 https://github.com/comfyanonymous/ComfyUI "$COMFYUI_DIR"
  fi
fi
export COMFYUI_DIR
source "$REPO_DIR/scripts/_env.sh"
exec "$PY" "$REPO_DIR/scripts/demo.py" "$@"
