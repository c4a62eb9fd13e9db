"""``GET /myspinbot/metrics``: Prometheus text exposition of the job API.

Each ``Metrics`` has its own ``CollectorRegistry`` (nothing goes to prometheus-client's global
registry), so several services — tests, or two ComfyUI instances in one process — never share
or collide. Families:

- ``myspinbot_jobs{status}``: jobs by status (from the store, at scrape time)
- ``myspinbot_queue_depth`` / ``myspinbot_queue_limit``: jobs waiting in ComfyUI's queue, and the limit
- ``myspinbot_job_status_changes_total{pipeline,status}``: status changes since start
- ``myspinbot_stage_duration_seconds{pipeline,stage}``: how long each pipeline stage took
  (a stage ends when the next starts; the last one when the job succeeds)
- ``myspinbot_webhook_deliveries_total{event,outcome}``: delivery attempts (outcome
  ``delivered``, ``retry`` or ``abandoned``); ``myspinbot_webhook_deliveries_pending``
- ``myspinbot_http_requests_total{route,method,status}`` and
  ``myspinbot_http_request_duration_seconds{route,method}`` (route = the route template)
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .api_errors import ApiError
from .contract.endpoints_service import GET_METRICS, METRICS_CONTENT_TYPE as CONTENT_TYPE
from .events import STAGE, STATUS, JobEvent
from .model import CANCELED, FAILED, QUEUED, STATUSES, SUCCEEDED
from .registry import RouteRegistry, as_registry
from .urls import PREFIX

log = logging.getLogger("myspinbot.metrics")

METRICS_PATH = GET_METRICS.path
STAGE_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf"))
_FINISHED = frozenset({SUCCEEDED, FAILED, CANCELED})


class Metrics:
    """The job API's metrics. Subscribes to the service's job events; ``observe_request`` is fed
    by ``auth.ApiGuard``, ``observe_delivery`` by ``webhooks.WebhookService``."""

    def __init__(self, service, *, clock: Callable[[], float] = time.monotonic):
        self.service = service
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        self._pending_deliveries: Callable[[], int] | None = None
        self._stages: dict[str, tuple[str, str, float]] = {}  # job id -> (pipeline, stage, entered at)
        r = self.registry
        self.status_changes = Counter("myspinbot_job_status_changes", "Job status changes since ComfyUI started.",
                                      ["pipeline", "status"], registry=r)
        self.stage_duration = Histogram("myspinbot_stage_duration_seconds", "How long each pipeline stage of a job took.",
                                        ["pipeline", "stage"], buckets=STAGE_BUCKETS, registry=r)
        self.webhook_deliveries = Counter("myspinbot_webhook_deliveries", "Webhook delivery attempts by outcome "
                                          "(delivered, retry: failed and retried later, abandoned: failed for good).",
                                          ["event", "outcome"], registry=r)
        self.http_requests = Counter("myspinbot_http_requests", f"HTTP requests to the {PREFIX} routes.",
                                     ["route", "method", "status"], registry=r)
        self.http_duration = Histogram("myspinbot_http_request_duration_seconds",
                                       f"Time to answer a {PREFIX} request (an event stream: its whole life).",
                                       ["route", "method"], registry=r)
        r.register(_StateCollector(self))
        service.events.listen(self.on_job_event)

    def close(self) -> None:
        self.service.events.unlisten(self.on_job_event)

    def track_webhooks(self, pending: Callable[[], int]) -> None:
        """Report ``pending()`` (deliveries not yet delivered nor abandoned) at every scrape."""
        self._pending_deliveries = pending

    # --- feeds -----------------------------------------------------------------------------
    def on_job_event(self, event: JobEvent) -> None:
        job = event.job
        if event.kind == STAGE and job.stage:
            now = self.clock()
            self._end_stage(job.id, now)
            self._stages[job.id] = (job.pipeline, job.stage, now)
        elif event.kind == STATUS:
            self.status_changes.labels(job.pipeline, job.status).inc()
            if job.status in _FINISHED:
                if job.status == SUCCEEDED:
                    self._end_stage(job.id, self.clock())
                self._stages.pop(job.id, None)

    def _end_stage(self, job_id: str, now: float) -> None:
        entry = self._stages.pop(job_id, None)
        if entry is not None:
            pipeline, stage, started = entry
            self.stage_duration.labels(pipeline, stage).observe(max(0.0, now - started))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_duration.labels(route, method).observe(seconds)

    def observe_delivery(self, event: str, outcome: str) -> None:
        self.webhook_deliveries.labels(event, outcome).inc()

    # --- exposition ------------------------------------------------------------------------
    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges read at scrape time: jobs by status, queue depth and limit, pending deliveries."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        service = self.metrics.service
        jobs = GaugeMetricFamily("myspinbot_jobs", "Jobs by status.", labels=["status"])
        for status in STATUSES:
            jobs.add_metric([status], service.store.count_status(status))
        yield jobs
        yield GaugeMetricFamily("myspinbot_queue_depth", "Jobs waiting in ComfyUI's queue.",
                                value=service.store.count_status(QUEUED))
        yield GaugeMetricFamily("myspinbot_queue_limit", "Jobs that may wait before submissions get 429.",
                                value=service.max_queued)
        if service.store.servers is not None:  # a shared queue: its servers, as their heartbeats left them
            yield from _server_gauges(service.store.servers.all(), service.settings.lease_s)
        pending = self.metrics._pending_deliveries
        if pending is not None:
            yield GaugeMetricFamily("myspinbot_webhook_deliveries_pending",
                                    "Webhook deliveries neither delivered nor abandoned yet.", value=pending())

    def describe(self) -> Iterator[Metric]:
        return iter(())  # collected only at scrape time, never at registration


def _server_gauges(rows: list, live_s: float) -> Iterator[Metric]:
    up = GaugeMetricFamily("myspinbot_server_up", "1 while a server of the shared queue beats within the lease.",
                           labels=["server", "host"])
    busy = GaugeMetricFamily("myspinbot_server_busy", "1 while the server's ComfyUI runs a prompt or it holds a job.",
                             labels=["server"])
    age = GaugeMetricFamily("myspinbot_server_heartbeat_age_seconds", "Seconds since the server's last heartbeat.",
                            labels=["server"])
    models = GaugeMetricFamily("myspinbot_server_models", "Manifest models the server has on disk.", labels=["server"])
    for row in rows:
        up.add_metric([row.id, row.host], 1.0 if row.age_s <= live_s else 0.0)
        busy.add_metric([row.id], 1.0 if row.busy else 0.0)
        age.add_metric([row.id], max(0.0, row.age_s))
        models.add_metric([row.id], len(row.models))
    yield from (up, busy, age, models)


def add_metrics_route(routes: RouteRegistry | web.RouteTableDef, metrics: Metrics | None) -> None:
    """``GET /myspinbot/metrics``; 404 ``metrics_disabled`` when the server runs without metrics."""

    @as_registry(routes).route(GET_METRICS)
    async def prometheus_metrics(request: web.Request) -> web.StreamResponse:
        if metrics is None:
            return ApiError(404, "metrics_disabled", "this server does not collect metrics").response()
        try:
            body = metrics.render()
        except Exception:
            log.exception("myspinbot: could not collect the metrics")
            return ApiError(500, "internal_error", "could not collect the metrics; see the ComfyUI log").response()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
