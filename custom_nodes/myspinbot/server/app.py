"""The composition root: the one function that builds the job API and registers every route.

``compose`` wires, in this order: the job store, the job service, access (token, guard
middleware, metrics, webhooks: ``guard.setup_access``), recovery of the jobs a previous process
left, retention and the queue reconciler (started with the app), and the routes of jobs and
assets, character profiles, webhooks, metrics, models and capabilities, the page and the session cookie, all through
one ``registry.RouteRegistry`` (so ``/openapi.json`` documents exactly these).

Production (``plugin.attach``) calls it with ComfyUI's host, app and route table; the tier-1
tests call it with a fake host and a plain aiohttp app. Nothing else builds these parts.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from aiohttp import web

from ..errors import ModelsMissingError
from ..models.lipsync_score import lipsync_score_file
from ..models.manager import ModelManager, probe_engines
from ..models.preflight import require
from .api_errors import ApiError
from .guard import Access, add_session_routes, setup_access
from .host import Host
from .jobs import JobService
from .jobs.claiming import SharedQueue
from .jobs.shared_setup import install_shared
from .jobs.event_relay import EventRelay
from .jobs.shared_files import SharedFiles
from .models_routes import add_model_routes, api_error
from .page import add_page_routes
from .pipelines import Pipeline, builtin_pipelines
from .profile_routes import add_profile_routes
from .profiles import ProfileService, TrainingObserver
from .reconcile import QueueReconciler
from .pg_db import PgDatabase
from .recovery import JobRecovery, Recovered, install
from .registry import RouteRegistry
from .retention import Retention
from .routes import add_routes
from .settings import Settings
from .store import JobStore

STORE_FILE = ("myspinbot", "jobs.sqlite3")
"""The job store's file, relative to ComfyUI's user directory."""


def store_path(user_dir: Path) -> Path:
    """``<user dir>/myspinbot/jobs.sqlite3``."""
    return Path(user_dir).joinpath(*STORE_FILE)


@dataclass(frozen=True)
class Models:
    """The model manager's part of the API: its routes and the submission preflight.

    ``nodes``: the pack's node ids (or a function returning them); ``engines``: a function
    returning the engines report; ``preflight``: refuse (409 ``models_missing``) a job whose
    models are not on disk, before it is queued."""

    manager: ModelManager
    nodes: Sequence[str] | Callable[[], Sequence[str]] = ()
    engines: Callable[[], Mapping[str, Any]] | None = probe_engines
    preflight: bool = True


@dataclass
class Api:
    """What ``compose`` built. ``app`` / ``routes``: where it registered (ComfyUI serves ``routes``
    under ``/api`` too when it starts); ``registry``: every route with its contract endpoint."""

    app: web.Application
    routes: web.RouteTableDef
    registry: RouteRegistry
    settings: Settings
    service: JobService
    access: Access
    recovery: JobRecovery
    recovered: Recovered
    retention: Retention
    reconciler: QueueReconciler
    shared_queue: SharedQueue | None = None
    """With ``MYSPINBOT_DATABASE_URL``: this server's side of the queue it shares (else None)."""
    event_relay: EventRelay | None = None
    """With ``MYSPINBOT_DATABASE_URL``: job events to and from the other servers (else None)."""
    profiles: ProfileService | None = None

    @property
    def store(self) -> JobStore:
        return self.service.store

    @property
    def webhooks(self) -> Any:
        return self.access.webhooks

    @property
    def metrics(self) -> Any:
        return self.access.metrics


def shared_files(settings: Settings, host: Host) -> SharedFiles:
    """The object storage of a shared queue (``MYSPINBOT_S3_*`` or ComfyUI's ``MySpinBot.S3.*``
    settings). Raises ``StorageError(storage_not_configured)`` naming what is missing: the pack
    then does not load on this server (a shared queue without it would run jobs whose files
    are on another server)."""
    from ..errors import StorageError

    s3 = settings.object_storage(host.user_dir)
    if not s3.bucket:
        raise StorageError("MYSPINBOT_DATABASE_URL needs object storage for the servers' inputs and outputs: "
                           "set MYSPINBOT_S3_BUCKET (and MYSPINBOT_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY)",
                           code="storage_not_configured", details={"missing": ["bucket"]})
    try:
        return SharedFiles(s3, host.input_dir, host.output_dir)
    except StorageError as err:
        raise StorageError(f"MYSPINBOT_DATABASE_URL needs object storage: {err.message}", code="storage_not_configured",
                           details=getattr(err, "details", {})) from None


def models_present(locator: Any) -> list[str]:
    """The manifest's models with every file on this server's disk."""
    return [name for name in locator.manifest if not locator.missing_files(name)]


def require_on_some_server(require_here: Callable[[list[str]], None], store: JobStore, live_s: float,
                           names: list[str]) -> None:
    """A shared queue's preflight: pass when this server or another live one (a heartbeat within
    ``live_s`` seconds) has every model of ``names``; else this server's 409 ``models_missing``."""
    try:
        require_here(names)
    except ApiError:
        if not store.servers.any_live_with(names, live_s):
            raise


def compose(host: Host, settings: Settings, *, app: web.Application, routes: web.RouteTableDef,
            listen: str | Iterable[str] | None, cors: bool = False, models: Models | None = None,
            pipelines: dict[str, Pipeline] | None = None, clock: Callable[[], float] = time.time,
            webhook_options: Mapping[str, Any] | None = None, deliver_webhooks: bool = True) -> Api:
    """Build the job API for ``host`` and register it on ``app`` (middleware, start/stop hooks)
    and ``routes`` (every route). Call it before the app starts (the middleware list freezes then).

    ``listen``: the address(es) ComfyUI listens on (beyond loopback the API token is required);
    ``cors``: ComfyUI sends CORS headers; ``models``: the model routes and preflight (None: no
    model routes); ``pipelines``: default ``builtin_pipelines()``; ``clock``: Unix seconds;
    ``webhook_options``: ``WebhookService`` keyword arguments (backoff, timeouts);
    ``deliver_webhooks``: False records deliveries but never sends them."""
    pipelines = pipelines if pipelines is not None else builtin_pipelines()
    pipeline_models = {name: p.models({}) for name, p in pipelines.items()}
    require_models = None
    if models is not None and models.preflight:
        locator = models.manager.locator

        def require_models(names: list[str]) -> None:
            try:
                require(names, locator)
            except ModelsMissingError as err:
                raise api_error(err) from None

    # A shared queue's servers exchange inputs and outputs through object storage: required with it.
    files = shared_files(settings, host) if settings.database_url else None
    database = PgDatabase(settings.database_url) if settings.database_url else store_path(host.user_dir)
    store = JobStore(database)
    present_models = None
    if models is not None:
        present_models = functools.partial(models_present, models.manager.locator)
        if store.servers is not None and require_models is not None:
            require_models = functools.partial(require_on_some_server, require_models, store, settings.lease_s)
    # With the SyncNet model in models/syncnet, every job's video outputs get a lip-sync score.
    score_model = None
    if models is not None and settings.lipsync_score:
        score_model = functools.partial(lipsync_score_file, models.manager.locator)
    service = JobService(host, store, pipelines, settings, clock=clock, require_models=require_models,
                         score_model=score_model, files=files)
    # Before anything settles old jobs: their status changes then reach the webhooks and metrics.
    access = setup_access(app, service, host.user_dir, listen, settings=settings, cors=cors,
                          webhook_options=webhook_options, deliver_webhooks=deliver_webhooks)
    # Character profiles: a training job's end settles its profile (a listener, like webhooks),
    # and jobs may name a ready profile instead of a portrait and a voice.
    profiles = ProfileService(service, access.webhooks)
    service.events.listen(TrainingObserver(store, host.input_dir, host.output_dir, clock,
                                           on_ready=profiles.store_files_later))
    service.profile_inputs = profiles.inputs_for
    recovery = JobRecovery(service)
    retention = Retention.from_settings(service, settings)
    shared_queue = relay = None
    if service.shared:
        # The queue is the database's, not this ComfyUI's: no restart recovery or queue
        # reconciliation here (another server may run any job); expired leases are reclaimed.
        recovered, reconciler = Recovered(), QueueReconciler(service)
        shared_queue = SharedQueue.from_settings(service, settings, models=present_models)
        relay = EventRelay(service, shared_queue.worker)
        install_shared(app, shared_queue, retention, relay)
    else:
        # Jobs the previous ComfyUI process left unfinished: settled now, re-queued (once) when
        # the server starts; finished jobs past their retention expire then and periodically.
        recovered = recovery.recover()
        reconciler = install(app, recovery, retention)

    registry = RouteRegistry(routes)
    add_routes(registry, service, webhooks=access.webhooks, metrics=access.metrics)
    add_profile_routes(registry, profiles, access.webhooks)
    if models is not None:
        add_model_routes(registry, models.manager, nodes=models.nodes, pipeline_models=pipeline_models,
                         engines=models.engines, servers=shared_queue.servers if shared_queue is not None else None,
                         lipsync_score_on=settings.lipsync_score)
    add_page_routes(registry)
    add_session_routes(registry, access.auth)
    return Api(app, routes, registry, settings, service, access, recovery, recovered, retention, reconciler, shared_queue,
               relay, profiles)
