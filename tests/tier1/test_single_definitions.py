"""Grep-level, read with ``ast``: the route prefix and each job status are written once in the pack.

- ``"/myspinbot"`` as a route appears in one string literal of the pack's code: ``server/urls.py``'s ``PREFIX``.
  Every route, URL and message builds on that name (f-strings included; docstrings and comments,
  which are prose, are not code).
- Each job status (``queued``, ``running``, ...) appears as a string literal in ``server/model.py``
  only; the rest of ``server/`` uses its constants. A dict key that happens to read like a status
  (the ``queued`` count of a 429's details) is a field name, not a status, and is left out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "custom_nodes" / "myspinbot"
SERVER_DIR = PACKAGE_DIR / "server"
ROUTE_PREFIX = "/myspinbot"
ROUTE = re.compile(r"(?:^|[\s(\"'`]|/api)/myspinbot(?![\w-])")
"""The prefix used as a route: at the start, after a space or quote, or under ``/api`` (not a
folder such as ``<user dir>/myspinbot/api_token``)."""


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings or other bare string statements (prose)."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def dict_keys(tree: ast.AST) -> set[int]:
    return {id(key) for node in ast.walk(tree) if isinstance(node, ast.Dict) for key in node.keys if key is not None}


def string_literals(path: Path, *, skip_keys: bool = False) -> list[tuple[int, str]]:
    """``(line, value)`` of every string constant of the module that is code, not prose."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = docstrings(tree) | (dict_keys(tree) if skip_keys else set())
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip]


def where(path: Path) -> str:
    return path.relative_to(PACKAGE_DIR).as_posix()


def test_the_route_prefix_is_written_once():
    found = [(where(p), line) for p in sorted(PACKAGE_DIR.rglob("*.py"))
             for line, value in string_literals(p) if ROUTE.search(value)]
    assert found == [("server/urls.py", found[0][1] if found else 0)], found
    from myspinbot.server.urls import PREFIX

    assert PREFIX == ROUTE_PREFIX


OTHER_MEANINGS = {
    ("server/webhook_store.py", "failed"): "the state of a webhook delivery (stored in its own table), not of a job",
    ("server/repos/profiles.py", "failed"): "the state of a character profile (its own table), not of a job",
}
"""Literals that read like a job status but name something else, and what."""


def test_each_job_status_is_written_once_in_server_code():
    from myspinbot.server.model import STATUSES

    assert len(set(STATUSES)) == len(STATUSES) == 7
    found: dict[str, list[tuple[str, int]]] = {status: [] for status in STATUSES}
    for path in sorted(SERVER_DIR.rglob("*.py")):
        for line, value in string_literals(path, skip_keys=True):
            if value in found and (where(path), value) not in OTHER_MEANINGS:
                found[value].append((where(path), line))
    for status, places in found.items():
        assert [p for p, _ in places] == ["server/model.py"], (status, places)


def test_the_checks_see_fstrings_and_skip_prose(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""Doc /myspinbot."""\nX = f"{A}/myspinbot/jobs"\nY = {"queued": 1}\nZ = "queued"\n')
    values = [v for _, v in string_literals(module)]
    assert "/myspinbot/jobs" in values and "Doc /myspinbot." not in values
    assert [bool(ROUTE.search(v)) for v in ("/myspinbot", "GET /myspinbot/jobs", "/api/myspinbot/x", "user/myspinbot/t",
                                           "/myspinbotx")] == [True, True, True, False, False]
    assert [v for _, v in string_literals(module, skip_keys=True)].count("queued") == 1


def environment_reads(path: Path) -> list[int]:
    """Lines of ``os.environ`` / ``os.getenv`` / ``environ`` imported from ``os`` in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = [node.lineno for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb", "putenv")
             and isinstance(node.value, ast.Name) and node.value.id == "os"]
    lines += [node.lineno for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "os"
              and any(a.name in ("environ", "getenv", "environb") for a in node.names)]
    return lines


def test_the_job_api_reads_the_environment_in_one_place():
    """``Settings.from_env`` (called once, by ``plugin.attach``); everything else gets ``Settings``."""
    found = {where(p): lines for p in sorted(SERVER_DIR.rglob("*.py")) if (lines := environment_reads(p))}
    assert list(found) == ["server/settings.py"], found
