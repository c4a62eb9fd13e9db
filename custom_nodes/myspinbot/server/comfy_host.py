"""``Host`` over ComfyUI's PromptServer: the only module of the job service that imports ComfyUI."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import execution
import folder_paths

from .api_errors import ApiError
from .host import EventCallback

log = logging.getLogger("myspinbot.host")

CLIENT_ID = "myspinbot-jobs"
OBSERVED_EVENTS = frozenset({"execution_start", "execution_cached", "executing", "progress",
                             "execution_success", "execution_error", "execution_interrupted"})


class PromptServerHost:
    """Queues prompts on ComfyUI's own ``prompt_queue`` (so jobs show in ComfyUI's queue and
    progress like any prompt) and observes its execution events without altering them."""

    def __init__(self, server: Any):
        self._server = server
        self._callbacks: list[EventCallback] = []
        self.input_dir = Path(folder_paths.get_input_directory())
        self.output_dir = Path(folder_paths.get_output_directory())
        self.user_dir = Path(folder_paths.get_user_directory())
        self._observe()

    def _observe(self) -> None:
        """Wrap ``send_sync`` so every event still goes to ComfyUI's clients unchanged and a copy
        of the execution events reaches the job service on the event loop."""
        server = self._server
        original = server.send_sync

        def send_sync(event, data, sid=None):
            original(event, data, sid)
            if event in OBSERVED_EVENTS and isinstance(data, dict) and self._callbacks:
                server.loop.call_soon_threadsafe(self._dispatch, event, dict(data))

        server.send_sync = send_sync

    def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        for callback in list(self._callbacks):
            callback(event, data)

    def subscribe(self, callback: EventCallback) -> None:
        self._callbacks.append(callback)

    async def enqueue(self, prompt_id: str, prompt: dict[str, Any]) -> None:
        valid = await execution.validate_prompt(prompt_id, prompt, None)
        if not valid[0]:
            log.warning("myspinbot: ComfyUI rejected the prompt of job %s: %s %s", prompt_id, valid[1], valid[3])
            raise ApiError(422, "invalid_workflow", "ComfyUI rejected the pipeline's workflow",
                           {"error": valid[1], "node_errors": valid[3]})
        server = self._server
        number = server.number
        server.number += 1
        extra_data = {"client_id": CLIENT_ID, "create_time": int(time.time() * 1000)}
        server.prompt_queue.put((number, prompt_id, prompt, extra_data, valid[2], {}))

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        return self._server.prompt_queue.get_history(prompt_id=prompt_id).get(prompt_id)
