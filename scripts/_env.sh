# Shared by scripts/test.sh and scripts/demo.sh: a virtual environment with the pack's
# requirements and the pinned CPU-tested torch trio (constraints-test.txt).
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MYSPINBOT_VENV:-$REPO_DIR/.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
fi
pip_install() { "$PY" -m pip install -q --disable-pip-version-check -c "$REPO_DIR/constraints-test.txt" "$@"; }
pip_install torch torchvision torchaudio
pip_install -r "$REPO_DIR/requirements-test.txt"
pip_install -r "$REPO_DIR/requirements-f5.txt"
pip_install --no-deps f5-tts==1.1.22
if [ -n "${COMFYUI_DIR:-}" ]; then
  pip_install -r "$COMFYUI_DIR/requirements.txt"
fi
