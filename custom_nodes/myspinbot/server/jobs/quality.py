"""Lip-sync scores of a job's video outputs: a score node per output in the prompt, its block in the history.

For any pipeline, when the SyncNet model is installed (``models.lipsync_score``), the service
adds to the built prompt one "MySpinBot Lip Sync Score" node per output of type ``video``,
fed by the same VIDEO link as that output's saving node (its ``video`` input: core's
``SaveVideo`` and the storage node ``MySpinBotSaveToMinIO`` both have one). The score node is
an output node, so ComfyUI runs it; it runs in ``on_error="skip"`` mode, so a video it cannot
score (no face, too short) never fails the job: its block then carries the reason. Which
output a score node belongs to is its title (``Lip sync score: <output name>``), so a stored
prompt (re-queued after a restart) needs nothing else.

When the prompt ends, the node's ``myspinbot_quality`` UI block (kept in ComfyUI's history)
becomes the output's ``quality``: ``{"av_offset_frames", "lse_d", "lse_c"}``, or those three
None and ``skipped: {"code", "message"}`` when the node skipped the video. No block (the
model was absent at submission, or the node did not run): no ``quality``.

The score is kept cheap on long videos: the face is detected on every ``DETECT_EVERY``-th frame
(interpolated between; the track is median-filtered over 13 frames anyway), offsets are
searched over the standard +-15 frames, and memory stays flat in length (the node streams).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

SCORE_NODE = "MySpinBotLipSyncScore"
TITLE_PREFIX = "Lip sync score: "
VSHIFT = 15
DETECT_EVERY = 10
BATCH_SIZE = 20


def add_score_nodes(prompt: dict[str, Any], output_nodes: Mapping[str, str], output_types: Mapping[str, str],
                    model_file: str) -> dict[str, str]:
    """Add a score node for each ``video`` output of ``prompt`` (edited in place).

    ``output_nodes``: output name → saving node id; ``output_types``: output name → type;
    ``model_file``: the SyncNet file in ``models/syncnet``. An output whose node has no linked
    ``video`` input is left unscored. Returns output name → score node id."""
    added: dict[str, str] = {}
    for name, node_id in output_nodes.items():
        if output_types.get(name) != "video" or node_id not in prompt:
            continue
        video = prompt[node_id].get("inputs", {}).get("video")
        if not (isinstance(video, list) and len(video) == 2 and isinstance(video[0], str)):
            continue
        score_id = _free_id(prompt)
        prompt[score_id] = {
            "class_type": SCORE_NODE,
            "inputs": {"video": list(video), "syncnet_model": model_file, "vshift": VSHIFT,
                       "detect_every": DETECT_EVERY, "batch_size": BATCH_SIZE, "on_error": "skip"},
            "_meta": {"title": TITLE_PREFIX + name},
        }
        added[name] = score_id
    return added


def score_nodes(prompt: Mapping[str, Any]) -> dict[str, str]:
    """Output name → id of its score node, read back from a prompt ``add_score_nodes`` edited."""
    found = {}
    for node_id, node in prompt.items():
        title = (node.get("_meta") or {}).get("title") or ""
        if node.get("class_type") == SCORE_NODE and title.startswith(TITLE_PREFIX):
            found[title[len(TITLE_PREFIX):]] = node_id
    return found


def quality_for(history_outputs: Mapping[str, Any], node_id: str | None) -> dict[str, Any] | None:
    """The public ``quality`` of an output from its score node's history entry, or None when
    the node left no usable block."""
    from ...lipsync.syncnet_score import QUALITY_UI_KEY

    if node_id is None:
        return None
    node_output = history_outputs.get(node_id)
    blocks = node_output.get(QUALITY_UI_KEY) if isinstance(node_output, dict) else None
    block = next((b for b in blocks or [] if isinstance(b, dict)), None)
    if block is None:
        return None
    skipped = block.get("skipped")
    if isinstance(skipped, dict):
        return _skipped(str(skipped.get("code") or "score_failed"), str(skipped.get("message") or ""))
    offset, lse_d, lse_c = block.get("offset_frames"), block.get("lse_d"), block.get("lse_c")
    numbers = (offset, lse_d, lse_c)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
        return _skipped("invalid_score", f"the score node reported no finite scores: {numbers}")
    return {"av_offset_frames": int(offset), "lse_d": float(lse_d), "lse_c": float(lse_c)}


def _skipped(code: str, message: str) -> dict[str, Any]:
    return {"av_offset_frames": None, "lse_d": None, "lse_c": None, "skipped": {"code": code, "message": message}}


def _free_id(prompt: Mapping[str, Any]) -> str:
    """A numeric node id above every numeric id of ``prompt`` (ComfyUI's own ids are numbers)."""
    numbers = [int(k) for k in prompt if str(k).isdigit()]
    return str(max(numbers, default=0) + 1)
