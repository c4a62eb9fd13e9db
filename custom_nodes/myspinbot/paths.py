"""Where the pack's own files are on disk (not ComfyUI's folders: see ``server.comfy_host``)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent.parent
WORKFLOWS_DIR = REPO_DIR / "workflows"
API_WORKFLOWS_DIR = WORKFLOWS_DIR / "api"
ASSETS_DIR = REPO_DIR / "assets"
