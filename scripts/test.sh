#!/usr/bin/env bash
# The test command: tier 1 always; tier 2 (a real ComfyUI) when COMFYUI_DIR is set.
# Extra arguments go to pytest. A run that collects no test fails.
source "$(dirname "$0")/_env.sh"
cd "$REPO_DIR"
set +e
"$PY" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests; treating that as a failure" >&2
  exit 1
fi
exit "$rc"
