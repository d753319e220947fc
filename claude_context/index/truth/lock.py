"""One writer per codebase across processes, with a lock the OS drops when its holder dies.

``filelock`` takes an OS file lock (``flock`` on POSIX, ``LockFileEx`` on Windows) that is
released when the holding process exits for any reason (kill -9 included), so a crashed writer
never wedges the index; the pid written inside is only for the "busy" message. Within one process
the lock is also exclusive between threads (a file watcher and an indexing job of the same
codebase take turns), since an OS lock alone would let a second thread of the holder in.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from claude_context.errors import IndexBusyError


class WriteLock:
    def __init__(self, path: Path, on_release: Callable[[], None] | None = None) -> None:
        self.path = path
        self._file = FileLock(path, thread_local=False, preserve_lock_file=True, on_acquired=_write_pid)
        self._owner: int | None = None  # thread ident of the holder in this process
        self._threads = threading.Lock()
        self._on_release = on_release  # e.g. drop the keyword index's own writer lock

    @property
    def held(self) -> bool:
        return self._owner is not None

    def acquire(self, timeout: float = 0.0) -> WriteLock:
        """Take the lock, waiting up to ``timeout`` seconds; raises IndexBusyError after that.

        The holding thread may call it again (a no-op); another thread of this process waits
        like another process would.
        """
        if self._owner == threading.get_ident():
            return self
        deadline = time.monotonic() + max(0.0, timeout)
        if not self._threads.acquire(timeout=max(0.0, timeout)):
            raise IndexBusyError("index busy: this process is updating it (indexing or watching)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._file.acquire(timeout=max(0.0, deadline - time.monotonic()), poll_interval=0.05)
            except Timeout:
                holder = self.holder()
                who = f" (pid {holder})" if holder else ""
                raise IndexBusyError(f"index busy: another process{who} is updating it") from None
        except BaseException:
            self._threads.release()
            raise
        self._owner = threading.get_ident()
        return self

    def release(self) -> None:
        if self._owner is None:
            return
        try:
            if self._on_release is not None:
                self._on_release()
        finally:
            try:
                with contextlib.suppress(OSError):
                    os.truncate(self.path, 0)
                self._file.release(force=True)
            finally:
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
        if self._owner is not None:
            return True
        if not self.path.exists():
            return False
        probe = FileLock(self.path, thread_local=False, preserve_lock_file=True)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        except OSError:  # a read-only home: no writer of ours can be there, but ask the OS anyway
            return _locked_read_only(self.path)
        probe.release(force=True)
        return False

    def __enter__(self) -> WriteLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _write_pid(fd: int) -> None:
    """The holder's pid, for the message another writer gets."""
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())


def _locked_read_only(path: Path) -> bool:
    """Whether some process holds the flock of a lock file this process may only read."""
    try:
        import fcntl  # POSIX (filelock takes the same flock there)

        fd = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
