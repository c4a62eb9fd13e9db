"""Shared test setup: makes the ``myspinbot`` package importable without ComfyUI and
locates the real fixtures in ``../shared/fixtures``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_PARENT = REPO / "custom_nodes"
FIXTURES = REPO.parent / "shared" / "fixtures"

if str(PACKAGE_PARENT) not in sys.path:
    sys.path.insert(0, str(PACKAGE_PARENT))

from backends import BACKENDS, new_store  # noqa: E402  (tests/ is on sys.path: pytest put it there)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The real test inputs (portrait photo, speech recordings); see their README."""
    if not FIXTURES.is_dir():
        pytest.fail(f"real fixtures missing: expected {FIXTURES} (../shared/fixtures beside the repo)")
    return FIXTURES


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the session (``pg_server.py``); skips loudly without one."""
    from pg_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a new, empty database on the session's PostgreSQL server (dropped after the test)."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server for the session (``s3_standin.S3StandIn``)."""
    from s3_standin import S3StandIn

    server = S3StandIn().start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server) -> dict[str, str]:
    """``MYSPINBOT_S3_*`` of a new, empty bucket on the session's S3 stand-in (a shared queue's object storage)."""
    import uuid

    return {"MYSPINBOT_S3_ENDPOINT": s3_server.endpoint, "MYSPINBOT_S3_ACCESS_KEY": "test-access",
            "MYSPINBOT_S3_SECRET_KEY": "test-secret", "MYSPINBOT_S3_REGION": "us-east-1",
            "MYSPINBOT_S3_BUCKET": f"shared-{uuid.uuid4().hex[:12]}", "MYSPINBOT_S3_RETRIES": "1"}


@pytest.fixture(params=BACKENDS)
def open_store(request, tmp_path):
    """Opens new, empty job stores on one backend (the test runs once per backend); closed after."""
    opened = []
    server = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None

    def make():
        opened.append(new_store(request.param, request, tmp_path / str(len(opened))))
        return opened[-1]

    yield make
    for store in opened:
        store.close()
        if server is not None:
            server.drop_database(store.db.url)
