"""Progress reporting and interrupt checks for long engine loops."""

from __future__ import annotations

from typing import Callable

import comfy.model_management
import comfy.utils


def progress_callback(total: int) -> Callable[[int, int], None]:
    """Return ``callback(done, total)`` for an engine loop: it raises ComfyUI's
    ``InterruptProcessingException`` when the user cancels and moves the node's progress bar."""
    bar = comfy.utils.ProgressBar(total)

    def on_progress(done: int, total_now: int) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        bar.update_absolute(done, total_now)

    return on_progress


def progress_text(node_id: str | None, text: str) -> None:
    """Show ``text`` under node ``node_id`` in the ComfyUI frontend (e.g. a training loss);
    nothing outside a running ComfyUI server or without a node id."""
    try:
        from server import PromptServer
    except ImportError:
        return
    instance = getattr(PromptServer, "instance", None)
    if instance is not None and node_id is not None:
        instance.send_progress_text(text, node_id)
