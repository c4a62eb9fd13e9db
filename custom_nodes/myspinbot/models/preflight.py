"""Preflight: before a job is queued, are the models its pipeline needs on disk?

Missing models are errors (the job must not be queued: code ``models_missing``); present
files that differ from the manifest (custom fine-tunes placed by hand) are warnings only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from .locate import ModelLocator


def preflight(pipeline_models: Mapping[str, Iterable[str]], locator: ModelLocator, *, verify: bool = True) -> dict[str, Any]:
    """Per pipeline: ``{"ready", "models", "missing", "errors", "warnings"}``.

    ``errors`` holds one ``models_missing`` item (models, files, fetch command) when any
    model is missing; ``warnings`` holds ``model_modified`` items for present files whose
    size or sha256 differ from the manifest. ``verify=False`` skips hashing files this
    process has not hashed yet (size mismatches are still reported)."""
    statuses: dict[str, dict[str, Any]] = {}
    report: dict[str, Any] = {}
    for pipeline, names in pipeline_models.items():
        names = list(dict.fromkeys(names))
        for name in names:
            if name not in statuses:
                statuses[name] = locator.status(name, verify=verify)
        missing = [name for name in names if not statuses[name]["present"]]
        errors = []
        if missing:
            err = locator.missing_error([(locator.entry(n), [f for f in locator.entry(n).files
                                                              if f.filename in statuses[n]["missing"]]) for n in missing])
            errors.append({"code": err.code, "message": err.message, "details": err.details})
        warnings = [w for name in names for w in statuses[name]["warnings"]]
        report[pipeline] = {"ready": not missing, "models": names, "missing": missing, "errors": errors, "warnings": warnings}
    return report


def require(names: Iterable[str], locator: ModelLocator) -> dict[str, dict[str, Path]]:
    """The files of every named model (``{model: {filename: path}}``).

    Raises ``ModelsMissingError`` listing *all* missing models and files at once (not just
    the first), with one fetch command for all of them."""
    found: dict[str, dict[str, Path]] = {}
    missing = []
    for name in dict.fromkeys(names):
        entry = locator.entry(name)
        absent = locator.missing_files(name)
        if absent:
            missing.append((entry, absent))
        else:
            found[name] = locator.find(name)
    if missing:
        raise locator.missing_error(missing)
    return found
