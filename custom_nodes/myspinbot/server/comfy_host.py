"""``Host`` over ComfyUI's PromptServer: the only module of the job service that imports ComfyUI.

A job's prompt enters ComfyUI the way core's ``POST /prompt`` takes one (``server.post_prompt``):
the on-prompt handlers other packs registered (``PromptServer.add_on_prompt_handler``) see it
and may change it (``trigger_on_prompt``), core's node replacements apply, then ComfyUI
validates it and queues it. A cancel uses core's own ``comfy_execution.jobs.cancel_job`` (what
``POST /api/jobs/{id}/cancel`` runs) where this ComfyUI has it.
"""

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

try:  # core's cancel by job id (newer ComfyUI); else the same two steps done here
    from comfy_execution.jobs import CANCEL_PENDING, CANCEL_RUNNING, cancel_job as core_cancel_job
except ImportError:  # pragma: no cover - depends on the ComfyUI version
    core_cancel_job = None

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
        """As core's ``post_prompt`` does with a request body ``{"prompt", "prompt_id", "client_id",
        "extra_data"}``: on-prompt handlers, queue number (a handler may set ``number`` or
        ``front``), node replacements, validation, sensitive extra data apart, then the queue. The
        prompt id stays the job's id whatever a handler returns."""
        server = self._server
        body = _on_prompt(server, {"prompt": prompt, "prompt_id": prompt_id, "client_id": CLIENT_ID, "extra_data": {}})
        prompt = body["prompt"]
        if "number" in body:
            number = float(body["number"])
        else:
            number = -server.number if body.get("front") else server.number
            server.number += 1
        replacements = getattr(server, "node_replace_manager", None)
        if replacements is not None:
            replacements.apply_replacements(prompt)
        valid = await execution.validate_prompt(prompt_id, prompt, None)
        if not valid[0]:
            log.warning("myspinbot: ComfyUI rejected the prompt of job %s: %s %s", prompt_id, valid[1], valid[3])
            raise ApiError(422, "invalid_workflow", "ComfyUI rejected the pipeline's workflow",
                           {"error": valid[1], "node_errors": valid[3]})
        extra_data = dict(body.get("extra_data") or {})
        extra_data["client_id"] = body.get("client_id") or CLIENT_ID
        sensitive = {key: extra_data.pop(key) for key in getattr(execution, "SENSITIVE_EXTRA_DATA_KEYS", ())
                     if key in extra_data}
        extra_data["create_time"] = int(time.time() * 1000)
        server.prompt_queue.put((number, prompt_id, prompt, extra_data, valid[2], sensitive))

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        return self._server.prompt_queue.get_history(prompt_id=prompt_id).get(prompt_id)

    def cancel(self, prompt_id: str) -> CancelOutcome:
        """Dequeue ``prompt_id`` if pending, else interrupt it only if it is the running prompt,
        with core's ``cancel_job`` where it exists (as ``POST /api/jobs/{id}/cancel`` does).

        The interrupt checks and signals under the queue's mutex (``interrupt_if_running``), so
        it cannot land on an unrelated prompt that started in between (ComfyUI resets the
        interrupt flag when a prompt starts)."""
        queue = self._server.prompt_queue

        def dequeue(pid: str) -> bool:
            return bool(queue.delete_queue_item(lambda item: item[1] == pid))

        if core_cancel_job is not None:
            running, pending = self._snapshot()
            history = queue.get_history(prompt_id=prompt_id)
            outcome = core_cancel_job(prompt_id, running, pending, history, self._interrupt_if_running, dequeue)
            result = {CANCEL_PENDING: DEQUEUED, CANCEL_RUNNING: INTERRUPTED}.get(outcome, NOT_FOUND)
        elif dequeue(prompt_id):
            result = DEQUEUED
        else:
            result = INTERRUPTED if self._interrupt_if_running(prompt_id) else NOT_FOUND
        if result != NOT_FOUND:
            log.info("myspinbot: %s prompt %s", "removed pending" if result == DEQUEUED else "interrupting running",
                     prompt_id)
        return result

    def _interrupt_if_running(self, prompt_id: str) -> bool:
        """Signal an interrupt if (and only if) ``prompt_id`` is the prompt running now."""
        queue = self._server.prompt_queue
        interrupt_if_running = getattr(queue, "interrupt_if_running", None)
        if interrupt_if_running is not None:  # newer ComfyUI: the same check-and-signal, atomic
            return bool(interrupt_if_running(prompt_id))
        with queue.mutex:  # an RLock: get_current_queue_volatile takes it again
            running, _ = queue.get_current_queue_volatile()
            if any(item[1] == prompt_id for item in running):
                comfy.model_management.interrupt_current_processing(True)
                return True
        return False

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


def _on_prompt(server: Any, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` after core's on-prompt handlers (``trigger_on_prompt``; each handler's failure is
    logged by core and skipped). A result that is not a body with a prompt leaves ``body`` as it was."""
    trigger = getattr(server, "trigger_on_prompt", None)
    if trigger is None:
        return body
    original = dict(body)
    try:
        result = trigger(body)
    except Exception:  # core catches each handler's error; this only guards an odd trigger
        log.exception("myspinbot: ComfyUI's on-prompt handlers failed; the job's prompt goes in unchanged")
        return original
    if not isinstance(result, dict) or not isinstance(result.get("prompt"), dict):
        log.warning("myspinbot: an on-prompt handler returned no prompt; the job's prompt goes in unchanged")
        return original
    return result
