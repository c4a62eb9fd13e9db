"""``comfy_host.PromptServerHost`` over a stand-in PromptServer / PromptQueue (tier 1).

The stand-ins have the shape of ComfyUI 0.33's (queue items ``(number, prompt_id, prompt,
extra_data, outputs, sensitive)`` in a heap, ``currently_running``, an RLock ``mutex``,
``delete_queue_item``, ``get_current_queue_volatile``, optionally ``interrupt_if_running``);
tier 2 runs the same code in a real ComfyUI.
"""

from __future__ import annotations

import asyncio
import heapq
import importlib
import sys
import threading
import types

import pytest


class StandInQueue:
    def __init__(self, atomic_interrupt: bool, interrupts: list):
        self.mutex = threading.RLock()
        self.queue: list[tuple] = []
        self.currently_running: dict[int, tuple] = {}
        self.history: dict[str, dict] = {}
        self.put_items: list[tuple] = []  # what ``put`` received through the host, in order
        self._interrupts = interrupts
        if atomic_interrupt:
            self.interrupt_if_running = self._interrupt_if_running

    def put(self, number: int, prompt_id: str) -> None:
        heapq.heappush(self.queue, (number, prompt_id, {}, {}, [], {}))

    def start_next(self) -> None:
        item = heapq.heappop(self.queue)
        self.currently_running[len(self.currently_running)] = item

    def delete_queue_item(self, match) -> bool:
        with self.mutex:
            for i, item in enumerate(self.queue):
                if match(item):
                    self.queue.pop(i)
                    heapq.heapify(self.queue)
                    return True
        return False

    def get_history(self, prompt_id=None):
        return {prompt_id: self.history[prompt_id]} if prompt_id in self.history else {}

    def get_current_queue_volatile(self):
        with self.mutex:
            return list(self.currently_running.values()), list(self.queue)

    def _interrupt_if_running(self, prompt_id: str) -> bool:
        with self.mutex:
            if any(item[1] == prompt_id for item in self.currently_running.values()):
                self._interrupts.append(("atomic", prompt_id))
                return True
        return False


@pytest.fixture
def comfy_host_module(monkeypatch, tmp_path):
    """``myspinbot.server.comfy_host`` imported against stub ComfyUI modules (a ComfyUI without
    core's ``cancel_job``); forgotten afterwards."""
    yield from _import_comfy_host(monkeypatch, tmp_path, {})


def core_cancel_module(calls: list) -> types.ModuleType:
    """``comfy_execution.jobs`` as core writes its cancel: classify from a snapshot, then dequeue
    or interrupt (each reporting whether it acted); ``calls`` records each call's arguments."""
    jobs = types.ModuleType("comfy_execution.jobs")
    jobs.CANCEL_RUNNING, jobs.CANCEL_PENDING, jobs.CANCEL_TERMINAL, jobs.CANCEL_UNKNOWN = "running", "pending", "terminal", "unknown"

    def cancel_job(prompt_id, running, queued, history, interrupt, dequeue):
        calls.append((prompt_id, [i[1] for i in running], [i[1] for i in queued], sorted(history)))
        if any(i[1] == prompt_id for i in running):
            return "running" if interrupt(prompt_id) else "unknown"
        if any(i[1] == prompt_id for i in queued):
            if dequeue(prompt_id):
                return "pending"
            return "running" if interrupt(prompt_id) else "unknown"
        return "terminal" if prompt_id in history else "unknown"

    jobs.cancel_job = cancel_job
    return jobs


@pytest.fixture
def comfy_host_core(monkeypatch, tmp_path):
    """``comfy_host`` against stubs of a ComfyUI that has core's ``cancel_job``; yields
    ``(module, interrupts, cancel_calls)``."""
    calls: list = []
    package = types.ModuleType("comfy_execution")
    package.jobs = core_cancel_module(calls)
    for module, interrupts in _import_comfy_host(monkeypatch, tmp_path, {"comfy_execution": package,
                                                                         "comfy_execution.jobs": package.jobs}):
        yield module, interrupts, calls


def _import_comfy_host(monkeypatch, tmp_path, extra: dict):
    interrupts: list = []
    management = types.ModuleType("comfy.model_management")
    management.interrupt_current_processing = lambda value=True: interrupts.append(("global", value))
    comfy = types.ModuleType("comfy")
    comfy.model_management = management
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.get_input_directory = lambda: str(tmp_path / "input")
    folder_paths.get_output_directory = lambda: str(tmp_path / "output")
    folder_paths.get_user_directory = lambda: str(tmp_path / "user")
    execution = types.ModuleType("execution")
    execution.SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
    execution.validated = []  # the prompts validate_prompt saw

    async def validate_prompt(prompt_id, prompt, partial_execution_targets):
        execution.validated.append((prompt_id, {k: v["class_type"] for k, v in prompt.items()}))
        return True, None, list(prompt), {}

    execution.validate_prompt = validate_prompt
    stubs = {"comfy": comfy, "comfy.model_management": management, "folder_paths": folder_paths, "execution": execution}
    if "comfy_execution.jobs" not in extra:
        stubs["comfy_execution"] = None  # importing it fails: an older ComfyUI
    for name, module in {**stubs, **extra}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "myspinbot.server.comfy_host", raising=False)
    module = importlib.import_module("myspinbot.server.comfy_host")
    yield module, interrupts
    sys.modules.pop("myspinbot.server.comfy_host", None)
    vars(sys.modules["myspinbot.server"]).pop("comfy_host", None)


def make_host(module, interrupts, atomic: bool, loop=None):
    sent = []
    queue = StandInQueue(atomic, interrupts)
    server = types.SimpleNamespace(prompt_queue=queue, number=0, loop=loop,
                                   send_sync=lambda event, data, sid=None: sent.append((event, data, sid)))
    return module.PromptServerHost(server), server, sent


@pytest.mark.parametrize("atomic", [True, False], ids=["interrupt_if_running", "mutex_fallback"])
def test_cancel_dequeues_or_interrupts_only_its_prompt(comfy_host_module, atomic):
    module, interrupts = comfy_host_module
    host, server, _ = make_host(module, interrupts, atomic)
    queue = server.prompt_queue
    for number, prompt_id in enumerate(["a", "b", "c"]):
        queue.put(number, prompt_id)
    queue.start_next()  # "a" runs

    assert host.cancel("b") == "dequeued"
    assert [item[1] for item in queue.queue] == ["c"] and interrupts == []
    assert host.cancel("c") == "dequeued" and queue.queue == []
    assert host.cancel("zzz") == "not_found" and interrupts == []
    assert host.cancel("a") == "interrupted"
    assert interrupts == ([("atomic", "a")] if atomic else [("global", True)])


def test_queue_position_follows_the_heap_order(comfy_host_module):
    module, interrupts = comfy_host_module
    host, server, _ = make_host(module, interrupts, True)
    for number, prompt_id in [(7, "late"), (2, "early"), (-1, "front"), (4, "middle")]:
        server.prompt_queue.put(number, prompt_id)
    assert [host.queue_position(p) for p in ("front", "early", "middle", "late")] == [1, 2, 3, 4]
    server.prompt_queue.start_next()
    assert host.queue_position("front") is None and host.queue_position("early") == 1
    assert host.queue_position("unknown") is None


async def test_observed_events_reach_subscribers_on_the_loop_and_clients_unchanged(comfy_host_module):
    module, interrupts = comfy_host_module
    host, server, sent = make_host(module, interrupts, True, loop=asyncio.get_running_loop())
    seen = []
    host.subscribe(lambda event, data: seen.append((event, data)))
    worker = threading.Thread(target=lambda: (server.send_sync("execution_start", {"prompt_id": "a"}, "client"),
                                              server.send_sync("status", {"x": 1}, None)))
    worker.start()
    worker.join()
    await asyncio.sleep(0.01)
    assert sent == [("execution_start", {"prompt_id": "a"}, "client"), ("status", {"x": 1}, None)]
    assert seen == [("execution_start", {"prompt_id": "a"})]


@pytest.mark.parametrize("atomic", [True, False], ids=["interrupt_if_running", "mutex_fallback"])
def test_cancel_goes_through_cores_cancel_job_where_core_has_it(comfy_host_core, atomic):
    module, interrupts, calls = comfy_host_core
    host, server, _ = make_host(module, interrupts, atomic)
    queue = server.prompt_queue
    for number, prompt_id in enumerate(["a", "b", "c"]):
        queue.put(number, prompt_id)
    queue.start_next()  # "a" runs
    queue.history["done"] = {"outputs": {}}

    assert host.cancel("b") == "dequeued" and [item[1] for item in queue.queue] == ["c"]
    assert calls[-1] == ("b", ["a"], ["b", "c"], [])  # core classified it from a snapshot of the queue
    assert host.cancel("done") == "not_found" and calls[-1][3] == ["done"]  # finished: core's no-op
    assert host.cancel("zzz") == "not_found" and interrupts == []
    assert host.cancel("a") == "interrupted"
    assert interrupts == ([("atomic", "a")] if atomic else [("global", True)])


class PromptServerStandIn(types.SimpleNamespace):
    """What core's PromptServer offers the host: on-prompt handlers and node replacements."""

    def trigger_on_prompt(self, json_data):
        for handler in self.on_prompt_handlers:
            try:
                json_data = handler(json_data)
            except Exception:  # core logs a failing handler and goes on with the others
                pass
        return json_data


class Replacements:
    def __init__(self, seen: list):
        self.seen = seen

    def apply_replacements(self, prompt):
        self.seen.append(sorted(prompt))
        for node in prompt.values():
            if node["class_type"] == "OldNode":
                node["class_type"] = "NewNode"


async def test_enqueue_runs_on_prompt_handlers_and_node_replacements_before_validation(comfy_host_module):
    module, interrupts = comfy_host_module
    queue = StandInQueue(True, interrupts)
    seen_by_handlers, replaced = [], []

    def recorder(json_data):
        seen_by_handlers.append(json_data)
        json_data["prompt"]["9"] = {"class_type": "OldNode", "inputs": {}}  # a handler may change the prompt
        json_data["extra_data"]["api_key_comfy_org"] = "secret"
        return json_data

    def broken(json_data):
        raise RuntimeError("a pack's handler fails")

    server = PromptServerStandIn(prompt_queue=queue, number=5, loop=None, send_sync=lambda *a, **k: None,
                                 on_prompt_handlers=[broken, recorder], node_replace_manager=Replacements(replaced))
    host = module.PromptServerHost(server)
    queue.put = lambda item: queue.put_items.append(item)
    await host.enqueue("job-1", {"1": {"class_type": "LoadImage", "inputs": {}}})

    [body] = seen_by_handlers
    assert body["prompt_id"] == "job-1" and body["client_id"] == module.CLIENT_ID and "1" in body["prompt"]
    assert replaced == [["1", "9"]]  # after the handlers, before validation
    assert sys.modules["execution"].validated == [("job-1", {"1": "LoadImage", "9": "NewNode"})]
    [(number, prompt_id, prompt, extra_data, outputs, sensitive)] = queue.put_items
    assert (number, prompt_id, sorted(prompt)) == (5, "job-1", ["1", "9"]) and server.number == 6
    assert extra_data["client_id"] == module.CLIENT_ID and "create_time" in extra_data
    assert "api_key_comfy_org" not in extra_data and sensitive == {"api_key_comfy_org": "secret"}


async def test_a_handler_that_returns_no_prompt_leaves_the_jobs_prompt_as_it_was(comfy_host_module):
    module, interrupts = comfy_host_module
    queue = StandInQueue(True, interrupts)
    server = PromptServerStandIn(prompt_queue=queue, number=0, loop=None, send_sync=lambda *a, **k: None,
                                 on_prompt_handlers=[lambda json_data: None])
    host = module.PromptServerHost(server)
    queue.put = lambda item: queue.put_items.append(item)
    await host.enqueue("job-2", {"1": {"class_type": "LoadImage", "inputs": {}}})
    assert [(item[1], sorted(item[2])) for item in queue.put_items] == [("job-2", ["1"])]
