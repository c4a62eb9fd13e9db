"""The ``assets`` table: uploaded inputs, content-addressed (the id is the sha256 of the bytes)."""

from __future__ import annotations

from ..db import Database
from ..model import Asset

COLUMNS = ("id", "kind", "content_type", "size_bytes", "path", "created_at")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM assets WHERE id = ?"


class AssetsRepo:
    def __init__(self, db: Database):
        self.db = db

    def add(self, asset: Asset) -> Asset:
        """Record an asset unless one with its id exists; returns the stored record."""
        with self.db.transaction() as conn:
            conn.execute(f"INSERT INTO assets ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
                         "ON CONFLICT (id) DO NOTHING",
                         tuple(getattr(asset, c) for c in COLUMNS))
            row = conn.execute(_SELECT, (asset.id,)).fetchone()
        return Asset(**dict(zip(COLUMNS, row)))

    def get(self, asset_id: str) -> Asset | None:
        with self.db.read() as conn:
            row = conn.execute(_SELECT, (asset_id,)).fetchone()
        return Asset(**dict(zip(COLUMNS, row))) if row else None
