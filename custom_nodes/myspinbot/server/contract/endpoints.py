"""Every endpoint of the contract, and the paths served without the API token."""

from __future__ import annotations

from . import endpoints_jobs, endpoints_models, endpoints_profiles, endpoints_service

ENDPOINTS = (*endpoints_service.ENDPOINTS, *endpoints_jobs.ENDPOINTS, *endpoints_profiles.ENDPOINTS,
             *endpoints_models.ENDPOINTS)
OPEN_PATHS = frozenset(e.path for e in ENDPOINTS if e.open)
"""Route templates the guard lets through without the token (``security: []`` in the document)."""
