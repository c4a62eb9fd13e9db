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
