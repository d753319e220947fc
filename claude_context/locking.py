"""One writer per codebase across processes, with a lock the kernel drops when its holder dies.

``flock`` is released when the holding process exits for any reason (kill -9 included), so a
crashed writer never wedges the index; the pid written inside is only for the "busy" message.
Within one process the lock is also exclusive between threads (a file watcher and an indexing job
of the same codebase take turns), since ``flock`` alone would let a second thread of the holder in.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from claude_context.index.base import IndexBusyError


class WriteLock:
    def __init__(self, path: Path, on_release: Callable[[], None] | None = None) -> None:
        self.path = path
        self._fd: int | None = None
        self._owner: int | None = None  # thread ident of the holder in this process
        self._threads = threading.Lock()
        self._on_release = on_release  # e.g. drop the keyword index's own writer lock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float = 0.0) -> WriteLock:
        """Take the lock, waiting up to ``timeout`` seconds; raises IndexBusyError after that.

        The holding thread may call it again (a no-op); another thread of this process waits
        like another process would.
        """
        if self._fd is not None and self._owner == threading.get_ident():
            return self
        deadline = time.monotonic() + max(0.0, timeout)
        if not self._threads.acquire(timeout=max(0.0, timeout)):
            raise IndexBusyError("index busy: this process is updating it (indexing or watching)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = self.holder()
                        os.close(fd)
                        who = f" (pid {holder})" if holder else ""
                        raise IndexBusyError(f"index busy: another process{who} is updating it") from None
                    time.sleep(0.05)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except BaseException:
            self._threads.release()
            raise
        self._fd = fd
        self._owner = threading.get_ident()
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if self._on_release is not None:
                self._on_release()
        finally:
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
                self._owner = None
                self._threads.release()

    def holder(self) -> int | None:
        try:
            text = self.path.read_text().strip()
            return int(text) if text else None
        except (OSError, ValueError):
            return None

    def is_locked(self) -> bool:
        """True if some process (maybe this one) holds the lock right now."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def __enter__(self) -> WriteLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
