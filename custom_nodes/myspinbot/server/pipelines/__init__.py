"""Pipelines the job API runs: named parameters bound into API-format workflows.

``base`` defines what a pipeline is (:class:`Param`, :class:`Stage`, :class:`OutputSpec`,
:class:`Pipeline`), ``coercion`` types raw values, ``workflow`` finds and prunes nodes,
``common`` holds the parameters and checks several pipelines share, and each of ``lite``,
``f5``, ``infinitetalk``, ``scene``, ``sadtalker`` and ``train_profile`` defines one pipeline.
The parameters' JSON Schemas (``GET /myspinbot/pipelines``, ``/openapi.json``) are generated
from these definitions.
"""

from __future__ import annotations

from . import f5, infinitetalk, lite, sadtalker, scene, train_profile
from .base import BuiltPrompt, OutputSpec, Param, Pipeline, Stage, Values
from .coercion import FILE_KINDS, TEXT_KINDS, coerce_value
from .common import F5_MODELS
from .infinitetalk import INFINITETALK_MODELS, INFINITETALK_UPSCALE_MODELS
from .workflow import link, load_workflow, node_by_title, node_inputs, prune


def builtin_pipelines() -> dict[str, Pipeline]:
    """The pack's pipelines by name (new objects on every call): ``lite``, ``f5``, ``infinitetalk``, ``scene``,
    ``sadtalker``, ``train_profile`` (submitted by ``POST /myspinbot/profiles``)."""
    return {p.name: p for p in (lite.pipeline(), f5.pipeline(), infinitetalk.pipeline(), scene.pipeline(),
                                sadtalker.pipeline(), train_profile.pipeline())}


__all__ = [
    "BuiltPrompt", "F5_MODELS", "FILE_KINDS", "INFINITETALK_MODELS", "INFINITETALK_UPSCALE_MODELS", "OutputSpec",
    "Param", "Pipeline", "Stage", "TEXT_KINDS", "Values", "builtin_pipelines", "coerce_value", "link",
    "load_workflow", "node_by_title", "node_inputs", "prune",
]
