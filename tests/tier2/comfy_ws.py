"""A /ws client for tier-2 tests, listening as the ComfyUI frontend does."""

from __future__ import annotations

import asyncio
import json
import threading

import aiohttp


class WsWatcher:
    """Listens on ComfyUI's /ws (as the ComfyUI frontend does) and keeps every JSON message."""

    def __init__(self, url: str, client_id: str = "myspinbot-test-watcher"):
        self.url = url.replace("http://", "ws://") + f"/ws?clientId={client_id}"
        self.messages: list[dict] = []
        self.on_message = None  # optional callback(message), called on the watcher's thread
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self):
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.url) as ws:
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        msg = await ws.receive(timeout=0.2)
                    except asyncio.TimeoutError:
                        continue
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        message = json.loads(msg.data)
                        self.messages.append(message)
                        if self.on_message is not None:
                            self.on_message(message)
                    elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        return

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(10), "could not connect to /ws"
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
