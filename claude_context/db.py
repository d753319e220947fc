"""SQLite connections as every store here opens them: one per thread, WAL, a 30 s busy wait.

Used by the codebase metadata (``index/truth/metadata.py``) and the shared embedding cache
(``embedding/cache.py``). WAL lets readers in other processes see a consistent snapshot while one
writer works; transactions are explicit (``isolation_level=None``).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class ThreadConnections:
    """One ``sqlite3`` connection per thread to one file (connections must not be shared)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA busy_timeout=30000")
            self._local.con = con
        return con

    def close(self) -> None:
        """Close this thread's connection (other threads close their own)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
