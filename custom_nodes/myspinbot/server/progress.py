"""Weighted stage progress and an ETA for one job, from ComfyUI's execution events.

A pipeline's stages (``pipelines.Stage``) each carry a weight: the share of the job's
run time they usually take. A job's progress is

    sum over its stages of  weight × (fraction of that stage's nodes done)

where a node is done once ComfyUI moved past it (or served it from cache) and the node
running now counts with its own ``progress`` value/max. Stages run one after the other in
these pipelines, so this is the weights of the finished stages plus the current stage's
weight times its fraction. Every pipeline ends in the service's own ``store`` stage
(recording the outputs), which only a successful finish completes: the value stays below 1
until the job has succeeded.

The ETA comes from the rate this job's progress value has been rising at, smoothed with an
exponential moving average over intervals of at least ``EtaEstimator.min_interval`` seconds;
it is ``None`` until the job has run long enough and moved far enough to measure.

This module only reads events; ComfyUI's own UI progress is left as it is (the host observes
``send_sync`` and passes everything on unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .model import STORE_STAGE

DEFAULT_STORE_WEIGHT = 0.05
"""Share of the ``store`` stage when a pipeline does not list it with a weight of its own."""

VALUE_CAP = 0.99
"""The highest value a job that has not succeeded reports."""

SAVE_DELTA = 0.005
"""A value rise smaller than this alone is not worth a write (unless ``SAVE_INTERVAL_S`` passed)."""

SAVE_INTERVAL_S = 1.0
"""At most this long between writes of a changed step / ETA while the value barely moves."""


@dataclass(frozen=True)
class StagePlan:
    """The stages one job goes through, in order, with weights that add up to 1."""

    names: tuple[str, ...]
    weights: tuple[float, ...]

    def index(self, name: str | None) -> int | None:
        return self.names.index(name) if name in self.names else None

    def weight(self, name: str) -> float:
        i = self.index(name)
        return self.weights[i] if i is not None else 0.0


def stage_plan(stages: Iterable[Any], present: Iterable[str] | None = None) -> StagePlan:
    """The plan of a pipeline's ``stages`` (objects with ``name`` and an optional ``weight``).

    With ``present`` (the stage names that have nodes in a job's prompt) the stages whose nodes
    were pruned from the prompt are left out. ``store`` is always last; it takes
    ``DEFAULT_STORE_WEIGHT`` unless listed with a weight. Stages without a weight share what
    the weighted ones leave (or, when they leave nothing, get their average). The weights are
    then scaled to add up to 1."""
    keep = None if present is None else set(present)
    chosen: list[tuple[str, float | None]] = []
    store_weight: float | None = None
    for stage in stages:
        weight = getattr(stage, "weight", None)
        if weight is not None and weight < 0:
            raise ValueError(f"stage '{stage.name}' has a negative weight")
        if stage.name == STORE_STAGE:
            store_weight = weight
            continue
        if keep is None or stage.name in keep:
            chosen.append((stage.name, weight))
    chosen.append((STORE_STAGE, DEFAULT_STORE_WEIGHT if store_weight is None else store_weight))
    given = [w for _, w in chosen if w is not None]
    missing = sum(1 for _, w in chosen if w is None)
    if missing:
        left = 1.0 - sum(given)
        fill = left / missing if left > 1e-9 else (sum(given) / len(given) if given and sum(given) > 0 else 1.0)
        chosen = [(n, fill if w is None else w) for n, w in chosen]
    total = sum(w for _, w in chosen)
    if total <= 0:
        chosen = [(n, 1.0) for n, _ in chosen]
        total = float(len(chosen))
    return StagePlan(tuple(n for n, _ in chosen), tuple(w / total for _, w in chosen))


class EtaEstimator:
    """Seconds left, from the smoothed rate at which a value in [0, 1] rises toward 1."""

    def __init__(self, *, min_elapsed: float = 2.0, min_progress: float = 0.02, min_interval: float = 0.5,
                 smoothing: float = 0.3):
        self.min_elapsed = min_elapsed
        self.min_progress = min_progress
        self.min_interval = min_interval
        self.smoothing = smoothing
        self._start: tuple[float, float] | None = None
        self._last: tuple[float, float] | None = None
        self._rate: float | None = None

    @property
    def rate(self) -> float | None:
        """Progress per second, smoothed; None until measured."""
        return self._rate

    def update(self, value: float, now: float) -> float | None:
        """Record ``value`` at ``now`` (seconds); returns the ETA in seconds or None."""
        if self._start is None:
            self._start = self._last = (now, value)
            return None
        last_t, last_v = self._last  # type: ignore[misc]
        if now - last_t >= self.min_interval:
            rate = max(0.0, value - last_v) / (now - last_t)
            if self._rate is None:
                # The first measurement: the average since the start, so one quick node does not set it.
                start_t, start_v = self._start
                self._rate = max(0.0, value - start_v) / (now - start_t)
            else:
                self._rate = self.smoothing * rate + (1 - self.smoothing) * self._rate
            self._last = (now, value)
        return self.eta(value, now)

    def eta(self, value: float, now: float) -> float | None:
        if self._start is None or self._rate is None or self._rate <= 0:
            return None
        start_t, start_v = self._start
        if now - start_t < self.min_elapsed or value - start_v < self.min_progress:
            return None
        return max(0.0, (1.0 - value) / self._rate)


@dataclass(frozen=True)
class Measure:
    """One reading of a job's progress: ``value`` for ``Job.progress``, ``detail`` for ``Job.progress_detail``."""

    value: float
    detail: dict[str, Any]


def initial_detail(plan: StagePlan) -> dict[str, Any]:
    """The detail of a job that has not started: its stage count, nothing measured yet."""
    return {"stage_index": None, "stages": len(plan.names), "step": None, "steps": None, "eta_seconds": None}


class ProgressTracker:
    """Follows one run of a job's prompt: node fractions in, weighted value / detail / ETA out."""

    def __init__(self, plan: StagePlan, node_stages: Mapping[str, str], eta: EtaEstimator | None = None):
        """``node_stages``: node id → stage name, for the prompt's nodes that belong to a stage."""
        self.plan = plan
        self.stage_nodes: dict[str, list[str]] = {}
        for node, stage in node_stages.items():
            if stage in plan.names:
                self.stage_nodes.setdefault(stage, []).append(node)
        self.eta = eta or EtaEstimator()
        self._saved_at: float | None = None

    @classmethod
    def for_prompt(cls, stages: Iterable[Any], node_stages: Mapping[str, Any]) -> "ProgressTracker":
        """A tracker for a built prompt: ``node_stages`` maps node ids to ``Stage`` objects or names."""
        names = {node: getattr(stage, "name", stage) for node, stage in node_stages.items()}
        return cls(stage_plan(stages, present=set(names.values())), names)

    def value(self, node_fraction: Mapping[str, float]) -> float:
        """The weighted value (uncapped) of these node fractions."""
        total = 0.0
        for stage, nodes in self.stage_nodes.items():
            done = sum(min(1.0, max(0.0, node_fraction.get(n, 0.0))) for n in nodes) / len(nodes)
            total += self.plan.weight(stage) * done
        return total

    def measure(self, node_fraction: Mapping[str, float], stage: str | None, step: tuple[float, float] | None,
                now: float, floor: float = 0.0) -> Measure:
        """The job's progress now. ``stage`` is the job's current stage name, ``step`` the running
        node's ComfyUI progress ``(value, max)`` (None when it reported none), ``floor`` the value
        already reported (the value never goes down)."""
        value = min(VALUE_CAP, max(floor, self.value(node_fraction)))
        eta = self.eta.update(value, now)
        detail = {
            "stage_index": self.plan.index(stage),
            "stages": len(self.plan.names),
            "step": _number(step[0]) if step else None,
            "steps": _number(step[1]) if step else None,
            "eta_seconds": round(eta, 1) if eta is not None else None,
        }
        return Measure(value, detail)

    def worth_saving(self, previous_value: float, previous_detail: Mapping[str, Any] | None, measure: Measure,
                     now: float, stage_changed: bool = False) -> bool:
        """Whether this reading should be written (and published): the value rose by ``SAVE_DELTA``,
        the stage or the step count changed, or something changed and ``SAVE_INTERVAL_S`` passed."""
        previous_detail = previous_detail or {}
        significant = (stage_changed or measure.value > previous_value + SAVE_DELTA
                       or measure.detail.get("steps") != previous_detail.get("steps")
                       or measure.detail.get("stage_index") != previous_detail.get("stage_index")
                       or (measure.detail.get("eta_seconds") is None) != (previous_detail.get("eta_seconds") is None))
        changed = significant or measure.value > previous_value or dict(measure.detail) != dict(previous_detail)
        due = self._saved_at is None or now - self._saved_at >= SAVE_INTERVAL_S
        if significant or (changed and due):
            self._saved_at = now
            return True
        return False


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(float(x), 4)
