"""Importing the pack the way ComfyUI does has no side effects and needs no ComfyUI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_PROBE = r"""
import importlib.util, json, sys, threading
before = set(sys.modules)
threads = threading.active_count()
spec = importlib.util.spec_from_file_location("clone_dir", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["clone_dir"] = module
spec.loader.exec_module(module)
new = set(sys.modules) - before
print(json.dumps({
    "entrypoint": callable(module.comfy_entrypoint),
    "web": module.WEB_DIRECTORY,
    "threads_started": threading.active_count() - threads,
    "heavy": sorted(m for m in new if m.split(".")[0] in {"torch", "cv2", "av", "comfy", "comfy_api", "folder_paths", "server", "requests", "huggingface_hub", "ollama"}),
}))
"""


def test_root_init_loads_like_comfyui_without_side_effects():
    out = subprocess.run([sys.executable, "-c", _PROBE, str(REPO / "__init__.py")], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report == {"entrypoint": True, "web": "./web/js", "threads_started": 0, "heavy": []}


def test_custom_nodes_folder_holds_no_python_file():
    # ComfyUI would load any .py lying directly in custom_nodes/ as a node module (base-directory mode).
    assert not list((REPO / "custom_nodes").glob("*.py"))


def test_requirements_stay_loose():
    lines = [l.strip() for l in (REPO / "requirements.txt").read_text().splitlines() if l.strip()]
    for line in lines:
        assert "#" not in line, f"inline comment in requirements.txt: {line}"
        name = line.split("<")[0].split(">")[0].split("=")[0].split("[")[0].lower()
        if name in {"torch", "torchvision", "torchaudio", "numpy", "transformers", "huggingface_hub", "huggingface-hub"}:
            assert name == line.lower(), f"{name} must not be pinned: {line}"


def test_pyproject_and_requirements_list_the_same_dependencies():
    """An install driven by pyproject (Comfy Registry, ``pip install .``) gets what requirements.txt gets."""
    import tomllib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    listed = [line.strip() for line in (repo / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    declared = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(listed) == sorted(declared)
