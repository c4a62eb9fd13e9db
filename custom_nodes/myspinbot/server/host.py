"""The interface between the job service and the ComfyUI it runs in.

``comfy_host.PromptServerHost`` implements it over ComfyUI's PromptServer; tier-1 tests use
a fake. Keeping the service behind this seam is what lets it be tested without ComfyUI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Literal, Protocol

EventCallback = Callable[[str, dict[str, Any]], None]
"""``callback(event, data)`` for ComfyUI execution events (``execution_start``, ``executing``,
``execution_cached``, ``progress``, ``execution_success``, ``execution_error``,
``execution_interrupted``); always invoked on the event loop's thread."""

RemovedCallback = Callable[[list[str]], None]
"""``callback(prompt_ids)`` for pending prompts that left ComfyUI's queue without running (core's
Clear queue, ``POST /queue {"clear": true}`` / ``{"delete": [...]}``, its job cancel route, or
``Host.cancel``); always invoked on the event loop's thread, after the removal."""

DEQUEUED, INTERRUPTED, NOT_FOUND = "dequeued", "interrupted", "not_found"
CancelOutcome = Literal["dequeued", "interrupted", "not_found"]
"""What ``Host.cancel`` did: removed a pending prompt from the queue (``dequeued``), signalled an
interrupt to the running prompt (``interrupted``), or found the prompt neither pending nor running."""


class Host(Protocol):
    input_dir: Path
    output_dir: Path
    user_dir: Path

    async def enqueue(self, prompt_id: str, prompt: dict[str, Any]) -> None:
        """Validate an API-format prompt and put it on the queue under ``prompt_id``, as ComfyUI's
        own ``POST /prompt`` does (other packs' on-prompt handlers see it first).

        Raises ``ApiError`` (code ``invalid_workflow``) when ComfyUI rejects the prompt."""

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        """ComfyUI's history entry for a finished prompt (``outputs``, ``status``), or None."""

    def subscribe(self, callback: EventCallback) -> None:
        """Call ``callback`` for every execution event from now on."""

    def cancel(self, prompt_id: str) -> CancelOutcome:
        """Stop ``prompt_id`` and nothing else: delete it from the queue if it is still pending,
        else interrupt it if (and only if) it is the prompt running now."""

    def queue_position(self, prompt_id: str) -> int | None:
        """1-based position of a pending prompt in the order the queue will start them (1 = next),
        or None when it is not pending (running, finished or unknown)."""

    def subscribe_removed(self, callback: RemovedCallback) -> None:
        """Call ``callback`` with the ids of pending prompts removed from the queue from now on."""

    def active_prompts(self) -> set[str]:
        """The ids of the prompts ComfyUI's queue holds now: pending or running."""
