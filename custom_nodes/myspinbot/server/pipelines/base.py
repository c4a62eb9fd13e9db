"""What a pipeline is: named parameters bound into an API-format workflow, its outputs and stages.

A :class:`Pipeline` is a workflow file (``workflows/api/<name>.json``) plus the list of its
:class:`Param`\\ s. A parameter names the node it feeds by the node's title (``_meta.title``),
never by node id. ``coerce`` types raw client values; ``build`` binds them into a copy of the
workflow, lets the pipeline ``rewire`` it, and prunes what the outputs do not need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..api_errors import ApiError
from .coercion import FILE_KINDS, coerce_value
from .workflow import load_workflow, node_by_title, prune


@dataclass(frozen=True)
class Param:
    """One named pipeline parameter.

    ``kind``: ``image`` / ``audio`` (an uploaded file, bound as its path relative to ComfyUI's
    input folder), ``text``, ``string``, ``number``, ``integer`` or ``boolean``. ``node`` is the title of the
    node it feeds and ``input`` that node's input name; both are None for a parameter that only
    steers the pipeline's ``rewire`` (e.g. which speech engine). ``choices`` limits a string."""

    name: str
    kind: str
    node: str | None
    input: str | None
    description: str = ""
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OutputSpec:
    """A file the pipeline yields: ``node`` is the title of the saving node."""

    name: str
    type: str
    node: str


@dataclass(frozen=True)
class Stage:
    """A named phase of a pipeline, reported as ``progress.stage``: it begins when ComfyUI starts
    executing any node whose title is in ``nodes``. ``message`` is the human-readable line shown with it.
    ``weight`` is its usual share of the job's run time, for the weighted ``progress.value``
    (``progress.py``; stages without one share what the others leave). The ``store`` stage has
    no nodes: the service completes it when it records a successful job's outputs."""

    name: str
    nodes: tuple[str, ...]
    message: str
    weight: float | None = None


@dataclass(frozen=True)
class BuiltPrompt:
    """A workflow with a job's values bound: ``prompt`` (API format) and output name → node id."""

    prompt: dict[str, Any]
    output_nodes: dict[str, str]


Values = dict[str, Any]
"""Typed parameter values by name, as :meth:`Pipeline.coerce` returns them."""


@dataclass(frozen=True)
class Pipeline:
    """A job type of the API. ``check(values)`` raises ``ApiError`` 422 for values that do not go
    together; ``rewire(prompt, values, pipeline)`` edits a bound prompt in place (which engine,
    which links); ``models(values)`` names (from the model manifest) the weights a job needs."""

    name: str
    description: str
    workflow_file: Path
    params: tuple[Param, ...]
    outputs: tuple[OutputSpec, ...]
    save_prefix_node: str
    check: Callable[[Values], None] = field(default=lambda values: None)
    rewire: Callable[[dict[str, Any], Values, "Pipeline"], None] = field(default=lambda prompt, values, p: None)
    stages: tuple[Stage, ...] = ()
    models: Callable[[Values], list[str]] = field(default=lambda values: [])
    """Names (from the model manifest) of the weights a job with these values needs."""
    gpu: bool = False
    """Whether the pipeline runs its models on a GPU (then it accepts longer speech: ``max_audio_s_gpu``)."""
    side_nodes: tuple[str, ...] = ()
    """Titles of nodes kept in a built prompt though no output depends on them (a trainer that
    writes a model file), unless ``rewire`` removed them."""
    profile_uses: tuple[str, ...] = ()
    """What a job's ``profile`` (a ready character profile) stands in for (``common.apply_profile``):
    ``voice`` (voice_sample + voice_transcript), ``portrait`` (its reference photo) and/or ``lora``
    (its LoRA + trigger word for text-to-image). Empty: the pipeline takes no profile."""

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def node_stages(self, prompt: dict[str, Any]) -> dict[str, Stage]:
        """Node id → the stage it belongs to, for the nodes of a built prompt that have one
        (nodes without a stage leave the job's stage as it was)."""
        by_title = {title: stage for stage in self.stages for title in stage.nodes}
        result = {}
        for node_id, node in prompt.items():
            stage = by_title.get(node.get("_meta", {}).get("title"))
            if stage is not None:
                result[node_id] = stage
        return result

    def file_params(self) -> list[Param]:
        return [p for p in self.params if p.kind in FILE_KINDS]

    def coerce(self, raw: dict[str, Any]) -> Values:
        """Validate raw values (strings from a form, or JSON values) against the parameters.

        Returns typed values with defaults filled in. Raises ``ApiError`` 422
        ``unknown_parameter`` / ``invalid_parameter`` naming the field, or whatever the
        pipeline's own ``check`` raises (missing inputs, conflicts)."""
        values: Values = {}
        for name, value in raw.items():
            param = self.param(name)
            if param is None:
                raise ApiError(422, "unknown_parameter", f"pipeline '{self.name}' has no parameter '{name}'",
                               {"field": name, "parameters": [p.name for p in self.params]})
            values[name] = coerce_value(param, value)
        for param in self.params:
            if param.name not in values and param.default is not None:
                values[param.name] = param.default
        self.check(values)
        return values

    def build(self, values: Values, save_prefix: str) -> BuiltPrompt:
        """Bind typed values into a copy of the API workflow; returns the prompt and the ids of its
        output nodes. Raises ``RuntimeError`` when the workflow lacks a titled node (a packaging bug)."""
        prompt = load_workflow(self.workflow_file)  # a fresh dict: safe to edit
        for param in self.params:
            if param.name in values and param.node is not None:
                node_id = node_by_title(prompt, param.node)
                prompt[node_id]["inputs"][param.input] = values[param.name]
        prompt[node_by_title(prompt, self.save_prefix_node)]["inputs"]["filename_prefix"] = save_prefix
        self.rewire(prompt, values, self)
        output_nodes = {o.name: node_by_title(prompt, o.node) for o in self.outputs}
        side = {nid for nid, node in prompt.items() if node.get("_meta", {}).get("title") in self.side_nodes}
        return BuiltPrompt(prune(prompt, set(output_nodes.values()) | side), output_nodes)
