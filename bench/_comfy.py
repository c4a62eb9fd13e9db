"""Import ComfyUI's modules in this process with ``--cpu`` semantics, for benchmarks that
compare against core nodes (``COMFYUI_DIR`` must point at a ComfyUI 0.33 checkout)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CUSTOM_NODES = REPO / "custom_nodes"


def comfy_dir() -> str | None:
    """``COMFYUI_DIR`` if it is set and exists, else ``None``."""
    d = os.environ.get("COMFYUI_DIR")
    return d if d and os.path.isdir(d) else None


def import_comfy(scratch: Path, cpu: bool = True) -> None:
    """Put ComfyUI and the pack on ``sys.path``, select the CPU code path unless ``cpu`` is
    False (before ``comfy.model_management`` is imported) and send temp/output files to ``scratch``."""
    d = comfy_dir()
    if d is None:
        raise RuntimeError("COMFYUI_DIR is not set")
    for p in (d, str(CUSTOM_NODES)):
        if p not in sys.path:
            sys.path.insert(0, p)
    from comfy.cli_args import args

    args.cpu = bool(cpu)
    import folder_paths

    (scratch / "temp").mkdir(parents=True, exist_ok=True)
    (scratch / "output").mkdir(parents=True, exist_ok=True)
    folder_paths.set_temp_directory(str(scratch / "temp"))
    folder_paths.set_output_directory(str(scratch / "output"))


def node(cls):
    """A V3 node class ready to call ``execute`` outside a prompt (hidden inputs all None),
    as ComfyUI's executor prepares it."""
    return cls.PREPARE_CLASS_CLONE(None)
