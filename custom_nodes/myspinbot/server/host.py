"""The interface between the job service and the ComfyUI it runs in.

``comfy_host.PromptServerHost`` implements it over ComfyUI's PromptServer; tier-1 tests use
a fake. Keeping the service behind this seam is what lets it be tested without ComfyUI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

EventCallback = Callable[[str, dict[str, Any]], None]
"""``callback(event, data)`` for ComfyUI execution events (``execution_start``, ``executing``,
``execution_cached``, ``progress``, ``execution_success``, ``execution_error``,
``execution_interrupted``); always invoked on the event loop's thread."""


class Host(Protocol):
    input_dir: Path
    output_dir: Path
    user_dir: Path

    async def enqueue(self, prompt_id: str, prompt: dict[str, Any]) -> None:
        """Validate an API-format prompt and put it on the queue under ``prompt_id``.

        Raises ``ApiError`` (code ``invalid_workflow``) when ComfyUI rejects the prompt."""

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        """ComfyUI's history entry for a finished prompt (``outputs``, ``status``), or None."""

    def subscribe(self, callback: EventCallback) -> None:
        """Call ``callback`` for every execution event from now on."""
