"""``Host`` over ComfyUI's PromptServer: the only module of the job service that imports ComfyUI."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any

import comfy.model_management
import execution
import folder_paths

from .api_errors import ApiError
from .host import DEQUEUED, INTERRUPTED, NOT_FOUND, CancelOutcome, EventCallback, RemovedCallback

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
        self._removed_callbacks: list[RemovedCallback] = []
        self.input_dir = Path(folder_paths.get_input_directory())
        self.output_dir = Path(folder_paths.get_output_directory())
        self.user_dir = Path(folder_paths.get_user_directory())
        self._observe()
        self._observe_removals()

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

    def _observe_removals(self) -> None:
        """Wrap the queue's ``wipe_queue`` and ``delete_queue_item`` (behind core's Clear queue,
        ``POST /queue {"clear"|"delete"}``, its job cancel route and ``cancel`` here) so that the
        ids of the pending prompts they remove reach the job service. Each call still runs the
        original, once, with its arguments and result unchanged; the bookkeeping never raises."""
        queue = self._server.prompt_queue
        mutex = getattr(queue, "mutex", None)
        if mutex is None:  # not the PromptQueue this was written for: the periodic reconciliation remains
            log.warning("myspinbot: ComfyUI's queue has no mutex; removals from it are not observed")
            return
        depth = [0]  # delete_queue_item calls wipe_queue for the last item: only the outer call reports

        def watch(original):
            @functools.wraps(original)
            def wrapper(*args, **kwargs):
                with mutex:  # an RLock: the original takes it again; the worker cannot pop in between
                    depth[0] += 1
                    before = _pending(queue) if depth[0] == 1 else None
                    try:
                        return original(*args, **kwargs)
                    finally:
                        depth[0] -= 1
                        if before:
                            self._report_removed(before, _pending(queue))
            return wrapper

        for name in ("wipe_queue", "delete_queue_item"):
            if callable(getattr(queue, name, None)):
                setattr(queue, name, watch(getattr(queue, name)))

    def _report_removed(self, before: dict[str, int], after: dict[str, int] | None) -> None:
        """Hand the ids in ``before`` but not in ``after`` (queue order) to the observers, on the loop."""
        if after is None or not self._removed_callbacks:
            return
        try:
            removed = sorted((number, prompt_id) for prompt_id, number in before.items() if prompt_id not in after)
            if removed:
                self._server.loop.call_soon_threadsafe(self._dispatch_removed, [p for _, p in removed])
        except Exception:  # a closed loop, odd queue items: never break the queue operation
            log.exception("myspinbot: could not report prompts removed from the queue")

    def _dispatch_removed(self, prompt_ids: list[str]) -> None:
        for callback in list(self._removed_callbacks):
            try:
                callback(prompt_ids)
            except Exception:
                log.exception("myspinbot: a queue removal observer failed")

    def subscribe_removed(self, callback: RemovedCallback) -> None:
        self._removed_callbacks.append(callback)

    def active_prompts(self) -> set[str]:
        running, pending = self._snapshot()
        return {item[1] for item in (*running, *pending)}

    def _snapshot(self) -> tuple[list, list]:
        """``(running, pending)`` queue items, without the deep copy of ``get_current_queue`` when possible."""
        queue = self._server.prompt_queue
        return (getattr(queue, "get_current_queue_volatile", None) or queue.get_current_queue)()

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

    def cancel(self, prompt_id: str) -> CancelOutcome:
        """Dequeue ``prompt_id`` if pending (as ComfyUI's ``POST /queue {"delete": [...]}``), else
        interrupt it only if it is the running prompt (as ``POST /interrupt {"prompt_id"}``).

        The running check and the interrupt happen under the queue's mutex, so the worker cannot
        finish this prompt and start another in between and the interrupt cannot land on an
        unrelated prompt (ComfyUI resets the interrupt flag when a prompt starts)."""
        queue = self._server.prompt_queue
        if queue.delete_queue_item(lambda item: item[1] == prompt_id):
            log.info("myspinbot: removed pending prompt %s from the queue", prompt_id)
            return DEQUEUED
        interrupt_if_running = getattr(queue, "interrupt_if_running", None)
        if interrupt_if_running is not None:  # newer ComfyUI: the same check-and-signal, atomic
            interrupted = bool(interrupt_if_running(prompt_id))
        else:
            with queue.mutex:  # an RLock: get_current_queue_volatile takes it again
                running, _ = queue.get_current_queue_volatile()
                interrupted = any(item[1] == prompt_id for item in running)
                if interrupted:
                    comfy.model_management.interrupt_current_processing(True)
        if interrupted:
            log.info("myspinbot: interrupting running prompt %s", prompt_id)
            return INTERRUPTED
        return NOT_FOUND

    def queue_position(self, prompt_id: str) -> int | None:
        _, pending = self._snapshot()
        # The queue is a heap of (number, prompt_id, ...): it starts prompts by ascending number.
        order = sorted(pending, key=lambda item: item[0])
        for position, item in enumerate(order, start=1):
            if item[1] == prompt_id:
                return position
        return None


def _pending(queue: Any) -> dict[str, int] | None:
    """Prompt id → queue number of the pending prompts (the caller holds the queue's mutex); None
    when the queue cannot be read."""
    try:
        return {item[1]: item[0] for item in queue.queue}
    except Exception:
        return None
