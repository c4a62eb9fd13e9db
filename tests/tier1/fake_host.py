"""A stand-in for ComfyUI behind the job service's ``Host`` interface (tier 1).

It records enqueued prompts instead of running them; tests play ComfyUI's execution events
and history back through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from myspinbot.server.api_errors import ApiError


class FakeHost:
    def __init__(self, root: Path):
        self.input_dir = root / "input"
        self.output_dir = root / "output"
        self.user_dir = root / "user"
        for d in (self.input_dir, self.output_dir, self.user_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.prompts: dict[str, dict[str, Any]] = {}
        self.histories: dict[str, dict[str, Any]] = {}
        self.reject_next = False
        self._callbacks = []

    async def enqueue(self, prompt_id: str, prompt: dict[str, Any]) -> None:
        if self.reject_next:
            self.reject_next = False
            raise ApiError(422, "invalid_workflow", "rejected by the fake host")
        self.prompts[prompt_id] = prompt

    def history(self, prompt_id: str):
        return self.histories.get(prompt_id)

    def subscribe(self, callback) -> None:
        self._callbacks.append(callback)

    def emit(self, event: str, **data: Any) -> None:
        for cb in self._callbacks:
            cb(event, data)

    def run_success(self, prompt_id: str, files: dict[str, bytes]) -> None:
        """Play a successful execution: every output node writes ``files[node_id]`` as an mp4."""
        prompt = self.prompts[prompt_id]
        self.emit("execution_start", prompt_id=prompt_id)
        outputs = {}
        for node_id in prompt:
            self.emit("executing", node=node_id, prompt_id=prompt_id)
            self.emit("progress", node=node_id, value=1, max=2, prompt_id=prompt_id)
            if node_id in files:
                sub = Path("myspinbot") / prompt_id
                (self.output_dir / sub).mkdir(parents=True, exist_ok=True)
                (self.output_dir / sub / "output_00001_.mp4").write_bytes(files[node_id])
                outputs[node_id] = {"images": [{"filename": "output_00001_.mp4", "subfolder": sub.as_posix(), "type": "output"}],
                                    "animated": [True]}
        self.emit("execution_success", prompt_id=prompt_id)
        self.histories[prompt_id] = {"outputs": outputs, "status": {"status_str": "success", "completed": True}}
        self.emit("executing", node=None, prompt_id=prompt_id)
