"""Fixtures of the tier-1 job API tests: a fake ComfyUI (``fake_host.FakeHost``) and the job API
composed over it exactly as production composes it (``server.app.compose``, via ``fake_host.compose_app``)."""

from __future__ import annotations

import pytest

from fake_host import Clock, FakeHost, compose_app


@pytest.fixture
def host(tmp_path):
    return FakeHost(tmp_path)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def api(host, clock):
    """The composed job API (``server.app.Api``): ComfyUI on loopback, default settings."""
    composed = compose_app(host, clock=clock)
    yield composed
    composed.store.close()


@pytest.fixture
def service(api):
    return api.service


@pytest.fixture
async def client(aiohttp_client, api):
    """A client of ``api``'s app (started: recovery, retention, reconciler and webhooks run)."""
    return await aiohttp_client(api.app)
