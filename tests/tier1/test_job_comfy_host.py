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
    """``myspinbot.server.comfy_host`` imported against stub ComfyUI modules; forgotten afterwards."""
    interrupts: list = []
    management = types.ModuleType("comfy.model_management")
    management.interrupt_current_processing = lambda value=True: interrupts.append(("global", value))
    comfy = types.ModuleType("comfy")
    comfy.model_management = management
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.get_input_directory = lambda: str(tmp_path / "input")
    folder_paths.get_output_directory = lambda: str(tmp_path / "output")
    folder_paths.get_user_directory = lambda: str(tmp_path / "user")
    for name, module in {"comfy": comfy, "comfy.model_management": management, "folder_paths": folder_paths,
                         "execution": types.ModuleType("execution")}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "myspinbot.server.comfy_host", raising=False)
    module = importlib.import_module("myspinbot.server.comfy_host")
    yield module, interrupts
    sys.modules.pop("myspinbot.server.comfy_host", None)
    vars(sys.modules["myspinbot.server"]).pop("comfy_host", None)


def make_host(module, interrupts, atomic: bool, loop=None):
    sent = []
    server = types.SimpleNamespace(prompt_queue=StandInQueue(atomic, interrupts), number=0, loop=loop,
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
