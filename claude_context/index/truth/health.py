"""Damage and failures of one codebase folder, recorded beside its ``index.sqlite``.

Files, not rows: a damaged (or full, or read-only) database cannot be trusted to hold the news of
its own failure, and every process must see it. ``DAMAGED`` holds why the SQLite file was found
damaged (a search or status hit it, or ``quick_check`` failed); ``LAST_ERROR`` the sentence of a
run whose status could not be written (disk full); ``ROOT`` the codebase root in plain text, so
``list`` and ``clear`` still know a codebase whose database cannot be opened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from claude_context.db import set_aside
from claude_context.index.truth.metadata import MetadataStore

DAMAGED = "DAMAGED"
LAST_ERROR = "LAST_ERROR"
ROOT = "ROOT"
STAMP = "index.sqlite.checked"  # size and mtime of index.sqlite when quick_check last passed
DERIVED = ("vectors", "bm25")  # local derived files: rebuilt from SQLite and the embedding cache


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _write(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):  # best effort: the disk may be full or read-only
        path.write_text(text + "\n", encoding="utf-8")


def damage(folder: Path) -> str:
    """Why the folder's index.sqlite was found damaged ("" if it was not)."""
    return _read(folder / DAMAGED)


def mark_damaged(folder: Path, reason: str) -> None:
    _write(folder / DAMAGED, reason)


def last_error(folder: Path) -> str:
    return _read(folder / LAST_ERROR)


def record_error(folder: Path, text: str) -> None:
    _write(folder / LAST_ERROR, text)


def clear_error(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / LAST_ERROR).unlink()


def record_root(folder: Path, root: Path) -> None:
    if _read(folder / ROOT) != str(root):
        _write(folder / ROOT, str(root))


def recorded_root(folder: Path) -> str:
    return _read(folder / ROOT)


def _stamp(folder: Path) -> str:
    try:
        st = os.stat(folder / "index.sqlite")
    except OSError:
        return ""
    return f"{st.st_size} {st.st_mtime_ns}"


def check(meta: MetadataStore, folder: Path) -> str:
    """"" if index.sqlite is sound, else SQLite's complaint. Runs ``quick_check`` (reads every page)
    only when the file changed since it last passed, so a no-op index run stays cheap."""
    stamp = _stamp(folder)
    if stamp and stamp == _read(folder / STAMP):
        return ""
    problem = meta.quick_check()
    if not problem:
        passed(folder)
    return problem


def passed(folder: Path) -> None:
    """The file as it is now is trusted (this process just wrote it, or it was checked)."""
    if not (folder / DAMAGED).exists():
        _write(folder / STAMP, _stamp(folder))


def set_aside_damaged(folder: Path) -> Path:
    """Move a damaged index.sqlite aside and drop what was derived from it; the caller holds the
    write lock and rebuilds from the files on disk (embeddings come back from the cache)."""
    moved = set_aside(folder / "index.sqlite", f"damaged-{int(time.time())}")
    for p in folder.iterdir():
        if p.name.startswith(DERIVED) or p.name in (DAMAGED, STAMP, LAST_ERROR):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return moved
