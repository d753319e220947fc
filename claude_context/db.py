"""SQLite connections as every store here opens them: one per thread, WAL, a 30 s busy wait.

Used by the codebase metadata (``index/truth/metadata.py``) and the shared embedding cache
(``embedding/cache.py``). WAL lets readers in other processes see a consistent snapshot while one
writer works; transactions are explicit (``isolation_level=None``).

A file (or its folder) this process cannot write is opened read-only, without the WAL pragma (which
writes): searches in a read-only home still answer, and a write fails with SQLite's "readonly
database" error, which ``faults.classify`` turns into one sentence. If even a read-only open fails
(no -shm file can be made next to it), the file is opened ``immutable``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path


def writable(path: Path) -> bool:
    """Whether this process may write ``path`` (or create it) and its folder (for -wal/-shm)."""
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


class ThreadConnections:
    """One ``sqlite3`` connection per thread to one file (connections must not be shared)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.read_only = not writable(path)
        self._local = threading.local()
        self.epoch = 0  # bumped by ``reset``: every thread reconnects (the file was replaced)

    def get(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is not None and self._local.epoch != self.epoch:
            con.close()
            con = None
        if con is None:
            con = self._connect()
            self._local.con, self._local.epoch = con, self.epoch
        return con

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            return _read_only(self.path)
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    def reset(self) -> None:
        """Make every thread reconnect on its next ``get`` (after the file was set aside)."""
        self.close()
        self.epoch += 1
        self.read_only = not writable(self.path)

    def close(self) -> None:
        """Close this thread's connection (other threads close their own)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


def _read_only(path: Path) -> sqlite3.Connection:
    uri = path.resolve().as_uri()
    kwargs = dict(uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
    con = sqlite3.connect(f"{uri}?mode=ro", **kwargs)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:  # e.g. a WAL file and no -shm can be created beside it
        con.close()
    return sqlite3.connect(f"{uri}?immutable=1", **kwargs)


def set_aside(path: Path, suffix: str) -> Path:
    """Rename a damaged SQLite file (and its -wal/-shm) out of the way; returns the new name."""
    target = path.with_name(f"{path.name}.{suffix}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{suffix}{n}")
    os.replace(path, target)
    for extra in ("-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.replace(f"{path}{extra}", f"{target}{extra}")
    return target
