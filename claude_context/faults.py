"""Storage faults as sentences: a full disk, a read-only home, a damaged SQLite file.

These arrive from many layers (SQLite, tantivy, hnswlib, plain file writes) as their own exception
types. ``classify`` turns one into the ``StorageError`` a user can act on; ``cli._run`` and
``mcp_server.server.tool_errors`` call it in their one error mapping, and an index run records its
sentence in the codebase's status. Anything it does not recognise stays a bug with a traceback.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

from claude_context.errors import (
    ClaudeContextError,
    DiskFullError,
    IndexDamagedError,
    ReadOnlyIndexError,
    StorageError,
)

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
# how the native libraries spell those errnos in their messages (tantivy: "(os error 28)")
FULL_TEXT = ("no space left", "disk is full", "file too large", "quota exceeded", "os error 28",
             "os error 27")  # fmt: skip
READ_ONLY_TEXT = ("readonly database", "read-only file system", "permission denied", "os error 30")
DAMAGED_TEXT = ("file is not a database", "malformed", "database corruption", "not a database")
LOW_SPACE_BYTES = 1 << 20  # less free than this on the index's disk: call it full


def is_damage(exc: BaseException) -> bool:
    """A SQLite error that means the file itself is damaged (not busy, not read-only)."""
    return isinstance(exc, sqlite3.DatabaseError) and any(t in str(exc).lower() for t in DAMAGED_TEXT)


def disk_nearly_full(path: Path | None) -> bool:
    """Free space on ``path``'s disk below ``LOW_SPACE_BYTES``, or a file-size limit on this process
    (how SQLite's "disk I/O error" on a write is told apart from a failing disk)."""
    try:
        if path is not None and shutil.disk_usage(path).free < LOW_SPACE_BYTES:
            return True
    except OSError:
        pass
    try:
        import resource  # POSIX only
    except ImportError:
        return False
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return soft != resource.RLIM_INFINITY


def classify(exc: BaseException, where: Path | None = None) -> ClaudeContextError | None:
    """The one-line error for a storage fault, or None if ``exc`` is not one (a bug: keep it)."""
    if isinstance(exc, ClaudeContextError):
        return exc
    text = str(exc).lower()
    place = f" ({where})" if where is not None else ""
    code = exc.errno if isinstance(exc, OSError) else None
    if code in FULL_ERRNOS or any(t in text for t in FULL_TEXT) or (
        "disk i/o error" in text and disk_nearly_full(where)
    ):
        return DiskFullError(
            f"disk full: no space left for the index{place}. Free some space and run the command again; "
            "what was indexed before stays searchable"
        )
    if is_damage(exc):
        return IndexDamagedError(
            f"the index is damaged{place}: {exc}. Run `claude-context index` on the codebase to rebuild "
            "it from the files (embeddings come from the cache), or `claude-context clear` it"
        )
    if code in READ_ONLY_ERRNOS or any(t in text for t in READ_ONLY_TEXT):
        return ReadOnlyIndexError(
            f"the index home is read-only{place}: searches still work, but indexing needs write access "
            "(or another CLAUDE_CONTEXT_HOME)"
        )
    if isinstance(exc, sqlite3.OperationalError) and "disk i/o error" in text:
        return StorageError(f"the disk holding the index failed a read or write{place}: {exc}")
    return None
