"""Engines import no ComfyUI module (they are tested and reused without ComfyUI)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "custom_nodes" / "myspinbot"
ENGINES = ("speech", "animate", "video", "script", "storage", "models", "restore", "lipsync", "training",
           "sadtalker", "faces")
COMFYUI_MODULES = {"comfy", "comfy_api", "comfy_execution", "comfy_extras", "folder_paths", "server", "nodes",
                   "execution", "node_helpers"}
PACK_ADAPTERS = {"nodes", "server"}  # the pack's own ComfyUI-facing subpackages


def imported_names(source: Path) -> list[tuple[int, str]]:
    """(relative level, dotted name) of every import in a file."""
    names = []
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append((node.level, node.module or ""))
    return names


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_imports_no_comfyui(engine):
    for source in sorted((PACKAGE / engine).rglob("*.py")):
        depth = len(source.relative_to(PACKAGE).parts) - 1  # levels up to the package root
        for level, name in imported_names(source):
            top = name.split(".")[0]
            if level == 0:
                assert top not in COMFYUI_MODULES, f"{source.relative_to(PACKAGE)} imports {name}"
            elif level == depth + 1:
                assert top not in PACK_ADAPTERS, f"{source.relative_to(PACKAGE)} imports the adapter package {name}"


def test_video_frame_map_needs_no_torch():
    for module in ("frame_map.py", "remux.py"):
        assert all(name.split(".")[0] != "torch" for _, name in imported_names(PACKAGE / "video" / module))
