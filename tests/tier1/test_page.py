"""The page routes (``server/page.py``): ``GET /myspinbot/`` serves index.html, ``/myspinbot/page/{file}``
its assets (the ES modules included), nothing outside ``web/page/`` is reachable; the page's JS and the
sidebar extension parse. What the JavaScript does is checked in a browser (test_page_browser_ci.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from aiohttp import web

from myspinbot.paths import REPO_DIR
from myspinbot.server.page import PAGE_DIR, PAGE_ROUTES, add_page_routes, page_file
from myspinbot.server.registry import RouteRegistry
from openapi_check import checked_app

SIDEBAR_JS = REPO_DIR / "web" / "js" / "myspinbot_sidebar.js"
PAGE_MODULES = sorted(p.name for p in PAGE_DIR.glob("*.js"))


def _app(root: Path = PAGE_DIR) -> web.Application:
    """An app with the page routes mounted like ComfyUI mounts them: plain and mirrored under /api."""
    registry = RouteRegistry()
    add_page_routes(registry, root)
    return checked_app(registry, mirror=True)


def test_page_routes_are_the_ones_listed():
    """``PAGE_ROUTES`` (what an access guard may leave open: static files, no job data) is exactly what is registered."""
    routes = web.RouteTableDef()
    add_page_routes(routes)
    assert {(r.method, r.path) for r in routes} == {("GET", p) for p in PAGE_ROUTES}


@pytest.fixture
async def page_client(aiohttp_client):
    return await aiohttp_client(_app())


@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_index_is_served(page_client, prefix):
    r = await page_client.get(prefix + "/myspinbot/")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/html")
    html = await r.text()
    assert html == (PAGE_DIR / "index.html").read_text(encoding="utf-8")
    for needed in ('id="pipeline"', 'id="portrait"', 'id="recording"', 'id="transcript"', 'id="prompt"', 'id="script"',
                   'id="submit"', 'id="progress"', 'id="video"', 'id="history"'):
        assert needed in html


@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_bare_path_redirects_to_the_slash(page_client, prefix):
    r = await page_client.get(prefix + "/myspinbot", allow_redirects=False)
    assert r.status == 302
    assert r.headers["Location"] == prefix + "/myspinbot/"


@pytest.mark.parametrize("name, content_type", [*((m, "text/javascript") for m in PAGE_MODULES),
                                                ("style.css", "text/css"), ("index.html", "text/html")])
@pytest.mark.parametrize("prefix", ["", "/api"])
async def test_assets_are_served(page_client, prefix, name, content_type):
    r = await page_client.get(f"{prefix}/myspinbot/page/{name}")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith(content_type)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert await r.read() == (PAGE_DIR / name).read_bytes()


def test_index_urls_are_relative():
    """Absolute URLs in index.html would break the page under /api/myspinbot/ or a proxy prefix (the
    requests the scripts make are checked in a browser: test_page_browser_ci.py)."""
    html = (PAGE_DIR / "index.html").read_text(encoding="utf-8")
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert "page/main.js" in refs and "page/style.css" in refs
    assert re.search(r'<script type="module" src="page/main.js"></script>', html)
    assert [r for r in refs if r.startswith(("/", "http:", "https:", "//"))] == []


@pytest.mark.parametrize("path", [
    "/myspinbot/page/missing.js",
    "/myspinbot/page/..%2F..%2FREADME.md",
    "/myspinbot/page/..%2f..%2f..%2fcustom_nodes%2fmyspinbot%2fpaths.py",
    "/myspinbot/page/.hidden.js",
    "/myspinbot/page/%00main.js",
    "/myspinbot/page/main.js%00.css",
    "/myspinbot/page/%5c..%5cREADME.md",
])
async def test_traversal_and_unknown_files_are_refused(page_client, path):
    r = await page_client.get(path)
    assert r.status == 404
    body = await r.json()
    assert body["error"]["code"] == "page_file_not_found"


async def test_dot_dot_segments_never_leave_the_page(page_client):
    """The client (and aiohttp) fold literal ``..`` segments: at most the page itself comes back."""
    index = (PAGE_DIR / "index.html").read_text(encoding="utf-8")
    for path in ("/myspinbot/page/..", "/myspinbot/page/%2e%2e", "/myspinbot/page/../../README.md",
                 "/myspinbot/page/../page/../../README.md", "/myspinbot/page/%2e%2e/%2e%2e/README.md"):
        r = await page_client.get(path)
        assert r.status in (200, 404), path
        if r.status == 200:
            assert await r.text() == index, path


def test_page_file_refuses_names_and_links_outside_the_root(tmp_path):
    root = tmp_path / "page"
    root.mkdir()
    (root / "ok.js").write_text("1")
    (root / "notes.txt").write_text("secret")  # unknown extension
    (root / "sub").mkdir()
    (root / "sub" / "deep.js").write_text("1")
    outside = tmp_path / "outside.js"
    outside.write_text("secret")
    (root / "link.js").symlink_to(outside)
    assert page_file("ok.js", root) == (root / "ok.js").resolve()
    for name in ("notes.txt", "sub/deep.js", "sub", "../outside.js", "..", ".", "", "link.js", "/etc/passwd",
                 "ok.js/", "..\\outside.js", "ok.js\x00", "missing.js"):
        assert page_file(name, root) is None, name


async def test_missing_page_files_give_an_error_envelope(aiohttp_client, tmp_path):
    client = await aiohttp_client(_app(tmp_path / "absent"))
    r = await client.get("/myspinbot/")
    assert r.status == 404
    assert (await r.json())["error"]["code"] == "page_not_found"


def test_web_js_holds_only_the_sidebar_extension():
    """ComfyUI loads every .js file in web/js into its frontend: the page's files must stay out of it
    (what the sidebar extension does is checked in a browser: test_page_browser_ci.py)."""
    files = sorted(p.name for p in (REPO_DIR / "web" / "js").rglob("*") if p.is_file())
    assert files == ["myspinbot_sidebar.js"]


@pytest.mark.parametrize("path", [SIDEBAR_JS, *(PAGE_DIR / m for m in PAGE_MODULES)], ids=["sidebar", *PAGE_MODULES])
def test_javascript_parses(path, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: JavaScript syntax not checked")
    module = tmp_path / (path.stem + ".mjs")  # .mjs: parsed as an ES module whatever node's defaults
    shutil.copyfile(path, module)
    result = subprocess.run([node, "--check", str(module)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", ["/myspinbot/", "/myspinbot/page/main.js", "/api/myspinbot/page/index.html"])
async def test_the_page_may_be_framed_only_by_its_own_origin(page_client, path):
    # Anti-framing (clickjacking): only a same-origin parent (ComfyUI's sidebar iframe) may frame the page.
    r = await page_client.get(path)
    assert r.status == 200
    assert r.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
