"""A stand-in for ComfyUI behind the job service's ``Host`` interface (tier 1).

It records enqueued prompts instead of running them; tests play ComfyUI's execution events
and history back through it. Like ComfyUI's ``PromptQueue`` it keeps the pending prompts in
order and knows the one running (``execution_start`` starts it, ``executing`` with no node ends it)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

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
        self.pending: list[str] = []  # prompt ids in the order the queue starts them
        self.running: str | None = None
        self.interrupts: list[str] = []  # prompt ids an interrupt was signalled to
        self.enqueue_delay = 0.0  # seconds enqueue awaits (to interleave concurrent submissions)
        self._callbacks = []
        self._removed_callbacks = []

    async def enqueue(self, prompt_id: str, prompt: dict[str, Any]) -> None:
        if self.enqueue_delay:
            await asyncio.sleep(self.enqueue_delay)
        if self.reject_next:
            self.reject_next = False
            raise ApiError(422, "invalid_workflow", "rejected by the fake host")
        self.prompts[prompt_id] = prompt
        self.pending.append(prompt_id)

    def cancel(self, prompt_id: str) -> str:
        if prompt_id in self.pending:
            self.pending.remove(prompt_id)
            self._removed([prompt_id])  # the real host's dequeue is observed like core's delete
            return "dequeued"
        if prompt_id == self.running:
            self.interrupts.append(prompt_id)
            return "interrupted"
        return "not_found"

    def queue_position(self, prompt_id: str) -> int | None:
        return self.pending.index(prompt_id) + 1 if prompt_id in self.pending else None

    def clear(self) -> list[str]:
        """Core's Clear queue (``POST /queue {"clear": true}``): every pending prompt is dropped."""
        dropped, self.pending = self.pending, []
        self._removed(dropped)
        return dropped

    def delete(self, prompt_id: str) -> None:
        """Core's ``POST /queue {"delete": [prompt_id]}``."""
        if prompt_id in self.pending:
            self.pending.remove(prompt_id)
            self._removed([prompt_id])

    def _removed(self, prompt_ids: list[str]) -> None:
        # Like the real host: observers hear of it on the event loop, after the removal.
        if prompt_ids and self._removed_callbacks:
            for cb in list(self._removed_callbacks):
                asyncio.get_running_loop().call_soon(cb, list(prompt_ids))

    def subscribe_removed(self, callback) -> None:
        self._removed_callbacks.append(callback)

    def active_prompts(self) -> set[str]:
        return set(self.pending) | ({self.running} if self.running else set())

    def history(self, prompt_id: str):
        return self.histories.get(prompt_id)

    def subscribe(self, callback) -> None:
        self._callbacks.append(callback)

    def emit(self, event: str, **data: Any) -> None:
        prompt_id = data.get("prompt_id")
        if event == "execution_start":
            if prompt_id in self.pending:
                self.pending.remove(prompt_id)
            self.running = prompt_id
        elif event == "executing" and data.get("node") is None and prompt_id == self.running:
            self.running = None
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


# --- helpers of the job API tests (their fixtures are in conftest.py) ---

class Clock:
    """A settable clock for the service (Unix seconds); each reading advances it by ``step``."""

    def __init__(self, now: float = 1_800_000_000.0, step: float = 0.001):
        self.now, self.step = now, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def serve_routes(app: web.Application, routes: web.RouteTableDef) -> web.Application:
    """Add ``routes`` to ``app`` as ComfyUI's server does when it starts: each one under ``/api`` too."""
    mirror = web.RouteTableDef()
    for route in routes:
        mirror.route(route.method, "/api" + route.path, **route.kwargs)(route.handler)
    app.add_routes(mirror)
    app.add_routes(routes)
    return app


def compose_app(host, settings=None, *, clock=None, listen: str = "127.0.0.1", models_root: Path | None = None,
                **options: Any):
    """The job API exactly as ``plugin.attach`` builds it (``server.app.compose``), over ``host``,
    on a plain aiohttp app with every route mirrored under ``/api``; returns the ``Api``. Every
    response the app sends is checked against its own /openapi.json (``openapi_check``).

    ``settings``: default ``Settings()``; ``listen``: loopback by default (the token optional);
    ``models_root``: the model manager's folder (default ``models_dir(host)``, empty: no model is
    present); ``options``: more ``compose`` keyword arguments."""
    from myspinbot.models.locate import ModelLocator, models_dir_folder_dirs
    from myspinbot.models.manager import ModelManager
    from myspinbot.models.manifest import load_manifest
    from myspinbot.server.app import Models, compose
    from myspinbot.server.openapi import build_openapi
    from myspinbot.server.settings import Settings
    from openapi_check import SpecCheck

    models = models_root if models_root is not None else models_dir(host)
    manifest = load_manifest()
    options.setdefault("models", Models(ModelManager(ModelLocator(models_dir_folder_dirs(models), manifest), manifest, models),
                                        engines=lambda: {}))
    if clock is not None:
        options["clock"] = clock
    composed: list = []  # the document is asked for at the first response, once the routes exist
    check = SpecCheck(lambda: build_openapi(composed[0].registry, composed[0].service.pipelines))
    app, routes = web.Application(middlewares=[check.middleware]), web.RouteTableDef()
    api = compose(host, settings if settings is not None else Settings(), app=app, routes=routes, listen=listen, **options)
    composed.append(api)
    serve_routes(app, routes)
    return api


def models_dir(host: FakeHost) -> Path:
    """The model folder ``compose_app`` gives the model manager by default: ``<host root>/models``."""
    return host.user_dir.parent / "models"


def place_models(host: FakeHost, names) -> None:
    """Put (empty) files of the named manifest models where the default model folder expects them:
    the job API's preflight only checks that they are there."""
    from myspinbot.models.locate import ModelLocator, models_dir_folder_dirs

    locator = ModelLocator(models_dir_folder_dirs(models_dir(host)))
    for name in names:
        entry = locator.entry(name)
        folder = locator.expected_dir(entry)
        folder.mkdir(parents=True, exist_ok=True)
        for file in entry.files:
            (folder / file.filename).touch()


def restart(old: FakeHost, clock=None, settings=None, **options: Any):
    """A new ComfyUI process on ``old``'s folders: an empty queue, the same job store, the job API
    composed again as production does (so the jobs it left are settled: ``api.recovered``)."""
    return compose_app(FakeHost(old.input_dir.parent), settings, clock=clock, **options)


def file_form(name: str, payload: bytes, filename: str, content_type: str = "application/octet-stream", **fields: str):
    data = aiohttp.FormData()
    for key, value in fields.items():
        data.add_field(key, value)
    data.add_field(name, io.BytesIO(payload), filename=filename, content_type=content_type)
    return data


async def upload(client, payload: bytes, filename: str = "upload.bin", content_type: str = "application/octet-stream"):
    """POST /myspinbot/assets; returns the response."""
    return await client.post("/myspinbot/assets", data=file_form("file", payload, filename, content_type))


async def upload_inputs(client, fixtures_dir) -> tuple[str, str]:
    """Upload the real portrait and speech fixtures; returns their asset ids."""
    ids = []
    for name in ("portrait_astronaut.png", "speech_front_left.wav"):
        r = await upload(client, (fixtures_dir / name).read_bytes(), name)
        assert r.status in (200, 201), await r.text()
        ids.append((await r.json())["asset_id"])
    return ids[0], ids[1]


def lite_body(portrait: str, audio: str | None = None, **options) -> dict:
    inputs: dict = {"portrait": {"asset_id": portrait}}
    if audio is not None:
        inputs["audio"] = {"asset_id": audio}
    body: dict = {"pipeline": "lite", "inputs": inputs}
    if options:
        body["options"] = options
    return body


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()
