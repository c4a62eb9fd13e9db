"""A test-only ComfyUI custom node pack (no nodes): ``GET /myspinbot-test/routes`` lists the
routes of ComfyUI's live aiohttp router, ``[{"method", "path"}]`` (path = the route template).

Loaded only by the tier-2 route test, through ``--extra-model-paths-config`` (a
``custom_nodes`` entry), never from the repository's own ``custom_nodes/``."""

from aiohttp import web
from server import PromptServer

NODE_CLASS_MAPPINGS: dict = {}


@PromptServer.instance.routes.get("/myspinbot-test/routes")
async def list_routes(request: web.Request) -> web.Response:
    routes = [{"method": route.method, "path": route.resource.canonical}
              for route in request.app.router.routes() if route.resource is not None]
    return web.json_response(routes)
