"""API-format workflow helpers: load a workflow file, find a node by title, prune unused nodes.

An API-format workflow (``prompt``) maps node id (str) → ``{"class_type", "inputs", "_meta"}``;
a link input is ``[source node id, output index]``. Pipelines name nodes by ``_meta.title``,
never by id, so a workflow can be re-exported from ComfyUI without touching code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_workflow(path: Path) -> dict[str, Any]:
    """The API-format workflow stored as JSON at ``path`` (a fresh dict on every call)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def node_by_title(prompt: dict[str, Any], title: str) -> str:
    """The id of the one node whose ``_meta.title`` is ``title``.

    Raises ``RuntimeError`` when there is none or more than one: a packaging bug, never the client's."""
    ids = [nid for nid, node in prompt.items() if node.get("_meta", {}).get("title") == title]
    if len(ids) != 1:
        raise RuntimeError(f"workflow must have exactly one node titled '{title}', found {len(ids)}")
    return ids[0]


def link(prompt: dict[str, Any], title: str, output: int = 0) -> list[Any]:
    """A link input ``[node id, output]`` to the node titled ``title``."""
    return [node_by_title(prompt, title), output]


def node_inputs(prompt: dict[str, Any], title: str) -> dict[str, Any]:
    """The ``inputs`` dict of the node titled ``title`` (mutable: binding writes into it)."""
    return prompt[node_by_title(prompt, title)]["inputs"]


def prune(prompt: dict[str, Any], keep_outputs: set[str]) -> dict[str, Any]:
    """The nodes of ``prompt`` that the node ids in ``keep_outputs`` depend on (themselves included)."""
    needed: set[str] = set()
    stack = list(keep_outputs)
    while stack:
        nid = stack.pop()
        if nid in needed:
            continue
        needed.add(nid)
        for value in prompt[nid]["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                stack.append(value[0])
    return {nid: node for nid, node in prompt.items() if nid in needed}
