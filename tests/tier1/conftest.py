"""Fixtures of the tier-1 job API tests: a fake ComfyUI (``fake_host.FakeHost``) and the job API
composed over it exactly as production composes it (``server.app.compose``, via ``fake_host.compose_app``);
every response of a composed app is checked against its own /openapi.json (``openapi_check``)."""

from __future__ import annotations

import pytest

from fake_host import Clock, FakeHost, compose_app


@pytest.fixture(autouse=True)
def responses_match_the_openapi_document():
    """Fail a test when a response of an app built with ``openapi_check`` (every ``compose_app``
    app, ``checked_app``) did not match that app's ``/openapi.json`` (status, content type or JSON body)."""
    import openapi_check

    openapi_check.drain()
    yield
    problems = openapi_check.drain()
    assert not problems, "responses that do not match /openapi.json:\n" + "\n".join(problems)


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


@pytest.fixture
def servers(postgres_url, tmp_path):
    """Makes servers of one shared PostgreSQL job queue (``shared_servers.Servers``); needs PostgreSQL."""
    from shared_servers import Servers

    made = Servers(postgres_url, tmp_path)
    yield made
    made.close()
