"""The embedding cache: vectors by (model id, text hash) in one SQLite file shared by all codebases.

A text embedded once is never embedded again, not after ``--force``, a branch switch, or in
another checkout. The model id includes the backend (and int8 config), so vectors of two
backends never mix.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from claude_context.db import ThreadConnections


class EmbeddingCache:
    """Vectors by (model id, text hash) in one SQLite file shared by all codebases."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._cons = ThreadConnections(path)
        self._con().execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, key TEXT NOT NULL, "
            "vector BLOB NOT NULL, PRIMARY KEY (model, key)) WITHOUT ROWID"
        )

    def _con(self) -> sqlite3.Connection:
        return self._cons.get()

    def get_many(self, model_id: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
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
