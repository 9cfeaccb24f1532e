"""Delivery ids already acted on, persisted (SQLite), so a replayed or retried delivery starts nothing twice."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


class DeliveryLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, received_at REAL NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def claim(self, delivery_id: str) -> bool:
        """True the first time an id is seen (it is recorded atomically); False for a duplicate."""
        with self._connect() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO deliveries (id, received_at) VALUES (?, ?)", (delivery_id, time.time())
            )
            return cur.rowcount == 1

    def forget(self, delivery_id: str) -> None:
        """Un-claim an id whose action failed, so the sender's retry (same id) is acted on."""
        with self._connect() as db:
            db.execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,))

    def seen(self, delivery_id: str) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM deliveries WHERE id = ?", (delivery_id,)).fetchone() is not None
