"""The pack's web page: ``GET /myspinbot/`` (the form, progress, video and job history) and its
static files under ``GET /myspinbot/page/{file}``. ComfyUI mirrors both under ``/api``.

The files live in ``web/page/`` at the repository root, beside ``web/js/`` (which ComfyUI loads
into its own frontend as extensions; the page's files must not be there). The page uses only
relative URLs, so it works under ``/myspinbot/``, ``/api/myspinbot/`` or a reverse-proxy prefix.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from ..paths import REPO_DIR
from .api_errors import ApiError
from .contract.endpoints_service import PAGE_CONTENT_TYPES as CONTENT_TYPES, PAGE_FILE, PAGE_INDEX, PAGE_REDIRECT
from .registry import RouteRegistry, as_registry

PAGE_DIR = REPO_DIR / "web" / "page"
INDEX = "index.html"
PAGE_ROUTES = (PAGE_REDIRECT.path, PAGE_INDEX.path, PAGE_FILE.path)
"""The page's route templates: static files with no job data, which a browser loads by navigation
(no ``Authorization`` header can be sent then); the page sends the API token on its own requests.
Their endpoints are open (``contract.endpoints.OPEN_PATHS``)."""
# One plain file name: no folders, no dot files, a known extension.
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def page_file(name: str, root: Path = PAGE_DIR) -> Path | None:
    """The file ``name`` directly inside ``root``, or None when the name is not a plain page file
    (separators, ``..``, dot files, unknown extensions) or the file is absent. Symlinks that lead
    out of ``root`` are refused too."""
    if not _FILE_NAME.match(name) or ".." in name or Path(name).suffix.lower() not in CONTENT_TYPES:
        return None
    base = root.resolve()
    path = (base / name).resolve()
    if path.parent != base or not path.is_file():
        return None
    return path


FRAMING_HEADERS = {"Content-Security-Policy": "frame-ancestors 'self'", "X-Frame-Options": "SAMEORIGIN"}
"""Anti-framing (clickjacking): only a page of the same origin may frame ours; ComfyUI's sidebar
tab (``web/js/``) loads it in an iframe from ComfyUI's own origin, so that keeps working."""


def _file_response(path: Path) -> web.FileResponse:
    return web.FileResponse(path, headers={"Content-Type": CONTENT_TYPES[path.suffix.lower()],
                                           "Cache-Control": "no-cache",
                                           "X-Content-Type-Options": "nosniff", **FRAMING_HEADERS})


def add_page_routes(routes: RouteRegistry | web.RouteTableDef, root: Path = PAGE_DIR) -> None:
    """Register the page's routes through ``routes`` (the app's registry, or a bare ``RouteTableDef``)."""
    registry = as_registry(routes)

    @registry.route(PAGE_REDIRECT)
    async def page_redirect(request: web.Request) -> web.StreamResponse:
        # The page's relative URLs need the trailing slash; keep an /api prefix if the client used one.
        raise web.HTTPFound(request.path + "/")

    @registry.route(PAGE_INDEX)
    async def page_index(request: web.Request) -> web.StreamResponse:
        path = page_file(INDEX, root)
        if path is None:
            return ApiError(404, "page_not_found", "the page's files are missing from this install (web/page/)").response()
        return _file_response(path)

    @registry.route(PAGE_FILE)
    async def page_asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["file"]
        path = page_file(name, root)
        if path is None:
            return ApiError(404, "page_file_not_found", f"no page file '{name}'").response()
        return _file_response(path)
