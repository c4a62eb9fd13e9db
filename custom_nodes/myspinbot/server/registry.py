"""The route registry: every route of the pack is registered here, against its contract
``Endpoint`` (``contract.spec``), so ``/openapi.json`` documents exactly the routes served.

Registering a handler also adds it to an aiohttp ``RouteTableDef`` at once (ComfyUI's
``PromptServer.instance.routes``, which ComfyUI mirrors under ``/api`` when it starts, or a test
app's table). One registry per app: pass the same one to every ``add_*_routes`` function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Iterator, Union

from aiohttp import web

from .contract.spec import Endpoint

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    endpoint: Endpoint
    handler: Handler


class RouteRegistry:
    """The routes registered so far, in order, each with its endpoint.

    Raises ``ValueError`` when a method and path, or an operation id, is registered twice."""

    def __init__(self, table: web.RouteTableDef | None = None):
        self.table = table if table is not None else web.RouteTableDef()
        self._routes: list[Route] = []

    def route(self, endpoint: Endpoint) -> Callable[[Handler], Handler]:
        """Decorator: register the handler for ``endpoint``."""

        def register(handler: Handler) -> Handler:
            self.add(endpoint, handler)
            return handler

        return register

    def add(self, endpoint: Endpoint, handler: Handler) -> None:
        for known in self._routes:
            if known.endpoint.key == endpoint.key:
                raise ValueError(f"{endpoint.method} {endpoint.path} is registered twice")
            if known.endpoint.operation_id == endpoint.operation_id:
                raise ValueError(f"operation id {endpoint.operation_id} is used twice")
        self.table.route(endpoint.method, endpoint.path)(handler)
        self._routes.append(Route(endpoint, handler))

    def __iter__(self) -> Iterator[Route]:
        return iter(list(self._routes))

    def __len__(self) -> int:
        return len(self._routes)

    def endpoints(self) -> list[Endpoint]:
        return [route.endpoint for route in self._routes]


def as_registry(routes: Union[RouteRegistry, web.RouteTableDef]) -> RouteRegistry:
    """``routes`` if it is a registry, else a new registry writing to that ``RouteTableDef``
    (its document then covers only what is registered through it)."""
    return routes if isinstance(routes, RouteRegistry) else RouteRegistry(routes)
