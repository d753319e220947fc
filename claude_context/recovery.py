"""What the engine does about a damaged ``index.sqlite`` (recorded by ``index/truth/health.py``).

* reads (search, find_symbol, status) that hit damage record it and fail with one sentence;
* ``index`` checks the file (``quick_check``, only when it changed since it last passed), and a
  damaged one is set aside and rebuilt from the files on disk, its vectors from the embedding cache;
* ``clear`` removes a codebase folder even when its database cannot be opened, and ``list`` shows
  such a codebase as failed instead of hiding it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from claude_context.errors import IndexBusyError, IndexDamagedError, NotIndexedError, StorageError
from claude_context.faults import classify, is_damage
from claude_context.index.truth import health
from claude_context.index.truth.lock import WriteLock
from claude_context.index.truth.store import codebase_folder
from claude_context.reports import CodebaseStatus

if TYPE_CHECKING:
    from claude_context.codebase import Codebase
    from claude_context.engine import Engine

log = logging.getLogger(__name__)
T = TypeVar("T")


def damaged_sentence(root: Path | str, reason: str) -> str:
    return (
        f"the index of {root} is damaged ({reason}): run `claude-context index {root}` to rebuild it "
        f"from the files (embeddings come from the cache), or `claude-context clear {root}`"
    )


@contextlib.contextmanager
def guard(folder: Path, root: Path | str | None) -> Iterator[None]:
    """Turn SQLite damage met while reading into IndexDamagedError, and record it for ``status``."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        health.mark_damaged(folder, str(exc))
        raise IndexDamagedError(damaged_sentence(root or folder, str(exc))) from exc


def damaged_status(root: Path | str, reason: str) -> CodebaseStatus:
    return CodebaseStatus(root=str(root), status="failed", error=damaged_sentence(root, reason))


def status_or_damage(cb: Codebase) -> CodebaseStatus:
    """``cb.status()``, or a failed status saying the index is damaged (never "indexed" then)."""
    root = health.recorded_root(cb.folder) or str(cb.folder)
    reason = health.damage(cb.folder)
    if not reason and not cb.store.lock.is_locked() and not cb.store.meta.read_only:
        reason = health.check(cb.store.meta, cb.folder)  # only if the file changed since it passed
        if reason:
            health.mark_damaged(cb.folder, reason)
    if reason:
        return damaged_status(root, reason)
    try:
        with guard(cb.folder, root):
            st = cb.status()
        st.root = st.root or root  # a first run that could not even record it (disk full)
        return st
    except IndexDamagedError as exc:
        return CodebaseStatus(root=root, status="failed", error=str(exc))


def guarded(method: Callable[..., T]) -> Callable[..., T]:
    """An engine read (search, find_symbol) that reports damage it meets as IndexDamagedError."""

    @functools.wraps(method)
    def run(engine: Engine, path: str | Path, *args: Any, **kwargs: Any) -> T:
        try:
            return method(engine, path, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            try:
                cb, _ = engine.resolve(path)
                folder, root = cb.folder, health.recorded_root(cb.folder) or path
            except Exception:  # cannot even tell which codebase: say what we know
                raise IndexDamagedError(damaged_sentence(path, str(exc))) from exc
            with guard(folder, root):
                raise

    return run


def open_for_index(engine: Engine, root: Path, lock_timeout: float) -> tuple[Codebase, str]:
    """The codebase of ``root``, ready for an index run; a damaged index.sqlite is set aside first
    (returns a note saying so, else ""). A storage fault on the way (disk full) is recorded for
    ``status`` and raised as its sentence."""
    folder = codebase_folder(engine.config.codebases_dir, root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        health.record_root(folder, root)
        return _open_for_index(engine, root, folder, lock_timeout)
    except Exception as exc:
        mapped = classify(exc, folder)
        if not isinstance(mapped, StorageError) or isinstance(mapped, IndexDamagedError):
            raise
        health.record_error(folder, str(mapped))
        if mapped is exc:
            raise
        raise mapped from exc


def unindexed_status(engine: Engine, path: Path) -> CodebaseStatus:
    """"not_indexed", unless a first run failed before it could record anything (disk full)."""
    error = health.last_error(codebase_folder(engine.config.codebases_dir, path))
    return CodebaseStatus(root=str(path), status="failed" if error else "not_indexed", error=error)


def _open_for_index(engine: Engine, root: Path, folder: Path, lock_timeout: float) -> tuple[Codebase, str]:
    reason = health.damage(folder)
    if not reason:
        try:
            cb = engine.codebase(root, create=True)
            assert cb is not None
            reason = "" if cb.store.meta.read_only else health.check(cb.store.meta, folder)
        except IndexDamagedError as exc:
            reason = str(exc)
        if not reason:
            return cb, ""
    engine.forget(root)
    moved = _locked(folder, root, lock_timeout, health.set_aside_damaged)
    cb = engine.codebase(root, create=True)
    assert cb is not None
    health.record_root(folder, root)
    note = (
        f"the index was damaged ({reason}): set aside as {moved.name} and rebuilt from the files on "
        "disk (embeddings from the cache)"
    )
    log.info("%s: %s", root, note)
    return cb, note


def clear_damaged(engine: Engine, path: Path) -> str:
    """``clear`` for a codebase whose database cannot be opened: remove its folder."""
    folder = codebase_folder(engine.config.codebases_dir, path)
    if not folder.exists():
        raise NotIndexedError(f"{path} is not indexed")
    engine.forget(path)
    _locked(folder, path, 5.0, lambda f: shutil.rmtree(f, ignore_errors=True))
    return str(path)


def _locked(folder: Path, root: Path, timeout: float, action):
    lock = WriteLock(folder / "write.lock")
    try:
        lock.acquire(timeout=timeout)
    except IndexBusyError as exc:
        raise IndexBusyError(f"{root}: {exc}") from None
    try:
        return action(folder)
    finally:
        lock.release()
