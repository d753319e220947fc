"""The embedding cache: vectors by (model id, text hash) in one SQLite file shared by all codebases.

A text embedded once is never embedded again, not after ``--force``, a branch switch, or in
another checkout. The model id includes the backend (and int8 config), so vectors of two
backends never mix.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from claude_context.db import ThreadConnections, set_aside
from claude_context.faults import is_damage

log = logging.getLogger(__name__)


class EmbeddingCache:
    """Vectors by (model id, text hash) in one SQLite file shared by all codebases."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._cons = ThreadConnections(path)
        self._replacing = threading.Lock()
        try:
            self._create()
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            self._set_aside(exc)

    def _create(self) -> None:
        if self._cons.read_only and self.path.exists():
            return  # a read-only home: read what is there
        self._con().execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, key TEXT NOT NULL, "
            "vector BLOB NOT NULL, PRIMARY KEY (model, key)) WITHOUT ROWID"
        )

    def _set_aside(self, exc: BaseException, epoch: int | None = None) -> None:
        """A damaged cache is only a cache: move it aside and start an empty one (vectors missing
        from it are embedded again on demand). ``epoch``: the connection epoch that failed (another
        thread may have replaced the file since)."""
        with self._replacing:
            if epoch is not None and epoch != self._cons.epoch:
                return
            self._set_aside_locked(exc)

    def _set_aside_locked(self, exc: BaseException) -> None:
        self._cons.close()
        moved = set_aside(self.path, f"damaged-{int(time.time())}")
        self._cons.reset()
        log.warning("the embedding cache %s was damaged (%s): set aside as %s, starting a new one",
                    self.path, exc, moved.name)  # fmt: skip
        self._create()

    def _con(self) -> sqlite3.Connection:
        return self._cons.get()

    def get_many(self, model_id: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        epoch = self._cons.epoch
        try:
            return self._get_many(model_id, keys)
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            self._set_aside(exc, epoch)
            return {}

    def _get_many(self, model_id: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        con = self._con()
        out: dict[str, np.ndarray] = {}
        keys = list(dict.fromkeys(keys))
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            for key, blob in con.execute(
                f"SELECT key, vector FROM embeddings WHERE model = ? AND key IN ({marks})", [model_id, *part]
            ):
                out[key] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, model_id: str, items: dict[str, np.ndarray]) -> None:
        epoch = self._cons.epoch
        try:
            self._put_many(model_id, items)
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            self._set_aside(exc, epoch)
            self._put_many(model_id, items)

    def _put_many(self, model_id: str, items: dict[str, np.ndarray]) -> None:
        if not items:
            return
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(
                "INSERT OR REPLACE INTO embeddings(model, key, vector) VALUES (?, ?, ?)",
                [(model_id, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def count(self, model_id: str | None = None) -> int:
        if model_id is None:
            return int(self._con().execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        row = self._con().execute("SELECT COUNT(*) FROM embeddings WHERE model = ?", (model_id,))
        return int(row.fetchone()[0])

    def close(self) -> None:
        """Close this thread's connection."""
        self._cons.close()
