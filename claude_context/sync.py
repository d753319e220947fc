"""Bring an indexed codebase up to date with known changes, fast: the engine side of freshness.

``Engine.index`` is the full, durable run (settings, model and backend changes, progress, a
durable save at the end). Watch mode and start-up reconciliation need something lighter that runs
after every file save, so this module:

* plans without the write lock: a stat-level scan (the whole tree, or only the paths a watcher
  reported) compared with the files table; nothing changed = nothing locked, nothing written;
* applies under the write lock through the same ``IndexPipeline`` (re-reads only files whose size
  or mtime moved, re-chunks only when the content hash changed, embeds only cache misses);
* defers the durable save of the vector index (a full rewrite of a file that is ~150 MB on a
  70k-chunk codebase) to ``flush``: SQLite and the embedding cache already hold every change, and
  ``CodebaseStore.sync`` repairs a lagging vector file by id difference after a crash.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from claude_context.discovery import DiscoveryOptions, Skipped, discover, discovery_options
from claude_context.engine import IndexCancelled, NotIndexedError, UserError
from claude_context.ignore import IgnoreRules
from claude_context.index.metadata import FileState
from claude_context.models import FileEntry
from claude_context.pipeline import Cancelled as PipelineCancelled

if TYPE_CHECKING:
    from claude_context.engine import Engine
    from claude_context.index.store import CodebaseStore


class NeedsFullIndex(UserError):
    """The codebase's first index run never completed, or its indexing settings changed since:
    only a full ``index`` run knows what to redo (updates never start one on their own, so a
    cancelled or failing run is not restarted behind the user's back)."""


log = logging.getLogger(__name__)

# Stores (of any engine in this process) holding changes whose vector index is not saved yet.
_unsaved: weakref.WeakSet[CodebaseStore] = weakref.WeakSet()
_unsaved_lock = threading.Lock()


@dataclass(slots=True)
class UpdateReport:
    """What one ``Engine.update`` did (a watcher prints one line of it per update)."""

    root: str
    full_scan: bool = False  # the whole tree was stat-walked (else only the reported paths)
    paths_checked: int = 0  # files stat-compared with the files table
    files_changed: int = 0  # files (re)chunked
    files_deleted: int = 0
    files_touched: int = 0  # stat moved but the content hash did not: nothing re-chunked
    chunks_written: int = 0
    chunks_embedded: int = 0  # the model ran on these (cache misses)
    applied: bool = False  # the index changed (took the write lock)
    durable: bool = False  # the vector index was saved to disk as well
    scan_s: float = 0.0
    seconds: float = 0.0
    changed_paths: list[str] = field(default_factory=list)  # a sample, for the update line
    note: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.files_changed or self.files_deleted)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class ChangePlan:
    """Files to re-read and paths to drop, from comparing stat data with the files table."""

    changed: list[FileEntry] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    checked: int = 0
    full: bool = False
    needs_full: bool = False  # the targeted scan met something only the full walk decides (symlinks)

    @property
    def empty(self) -> bool:
        return not self.changed and not self.deleted


def _differs(entry: FileEntry, states: dict[str, FileState]) -> bool:
    s = states.get(entry.path)
    return s is None or s.size != entry.size or s.mtime_ns != entry.mtime_ns


def plan_full(root: Path, options: DiscoveryOptions, states: dict[str, FileState]) -> ChangePlan:
    """Stat-walk the whole tree (no file is opened) and diff it with the files table."""
    skipped: list[Skipped] = []
    entries = list(discover(root, options, skipped))
    seen = {e.path for e in entries}
    return ChangePlan(
        changed=[e for e in entries if _differs(e, states)],
        deleted=[p for p in states if p not in seen],
        checked=len(entries),
        full=True,
    )


def plan_paths(
    root: Path, options: DiscoveryOptions, states: dict[str, FileState], paths: Iterable[str]
) -> ChangePlan:
    """Diff only ``paths`` (relative POSIX paths of files or folders, as a watcher reports them).

    A path that no longer exists drops its file, or every file below it (a deleted or moved-away
    folder); a folder that exists is walked. Mirrors discovery's rules (ignore files, size limit,
    readability); symlinks are left to the full walk (``needs_full``) because discovery's link
    rules depend on the rest of the tree.
    """
    rules = IgnoreRules(root, options)
    plan = ChangePlan()
    root_s = str(root)
    by_prefix: list[str] | None = None
    seen: set[str] = set()
    for rel in sorted({_rel(p) for p in paths} - {""}):
        if rel in seen or rel.startswith("../"):
            continue
        seen.add(rel)
        abs_path = f"{root_s}/{rel}"
        try:
            st = os.lstat(abs_path)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        except OSError:  # unreadable now: discovery would skip it, so it leaves the index
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            try:
                os.stat(abs_path)
            except OSError:  # a broken link (e.g. an editor's lock file): discovery skips it quietly
                st = None
            else:
                plan.needs_full = True
                return plan
        if st is not None and os.path.realpath(abs_path) != os.path.normpath(abs_path):
            plan.needs_full = True  # reached through a linked folder
            return plan
        if st is None or (not stat.S_ISDIR(st.st_mode) and not stat.S_ISREG(st.st_mode)):
            if rel in states:
                plan.deleted.append(rel)
            if by_prefix is None:
                by_prefix = sorted(states)
            plan.deleted.extend(_under(by_prefix, rel))
            continue
        if stat.S_ISDIR(st.st_mode):
            if by_prefix is None:
                by_prefix = sorted(states)
            below = set(_under(by_prefix, rel))
            if rules.is_ignored(rel, True):
                plan.deleted.extend(sorted(below))
                continue
            found: dict[str, FileEntry] = {}
            if _walk_folder(root_s, rel, rules, options, found):
                plan.needs_full = True
                return plan
            for path, entry in found.items():
                seen.add(path)
                plan.checked += 1
                if _differs(entry, states):
                    plan.changed.append(entry)
            plan.deleted.extend(sorted(below - set(found)))
            continue
        plan.checked += 1
        entry = _file_entry(rel, abs_path, st, rules, options)
        if entry is None:
            if rel in states:
                plan.deleted.append(rel)
        elif _differs(entry, states):
            plan.changed.append(entry)
    plan.deleted = sorted(set(plan.deleted) - {e.path for e in plan.changed})
    return plan


def _rel(path: str) -> str:
    rel = path.replace(os.sep, "/").strip("/")
    while rel.startswith("./"):
        rel = rel[2:]
    return "" if rel == "." else rel


def _under(sorted_paths: list[str], folder: str) -> list[str]:
    import bisect

    prefix = folder + "/"
    i = bisect.bisect_left(sorted_paths, prefix)
    out = []
    while i < len(sorted_paths) and sorted_paths[i].startswith(prefix):
        out.append(sorted_paths[i])
        i += 1
    return out


def _file_entry(
    rel: str, abs_path: str, st: os.stat_result, rules: IgnoreRules, options: DiscoveryOptions
) -> FileEntry | None:
    """The entry discovery would yield for this regular file, or None if it would skip it."""
    if rules.is_ignored(rel, False) or st.st_size > options.max_file_bytes:
        return None
    if not os.access(abs_path, os.R_OK):
        return None
    return FileEntry(rel, Path(abs_path), st.st_size, st.st_mtime_ns)


def _walk_folder(
    root_s: str, folder: str, rules: IgnoreRules, options: DiscoveryOptions, out: dict[str, FileEntry]
) -> bool:
    """Collect the indexable files below ``folder`` (parents already known not ignored).
    Returns True if a symlink was met (the caller then runs the full walk instead)."""
    stack = [folder]
    while stack:
        parent = stack.pop()
        try:
            with os.scandir(f"{root_s}/{parent}") as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            rel = f"{parent}/{entry.name}"
            try:
                if entry.is_symlink():
                    return True
                is_dir = entry.is_dir(follow_symlinks=False)
                if is_dir:
                    if rules.classify_entry(parent, rel, entry.name, True) is None:
                        stack.append(rel)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                if rules.classify_entry(parent, rel, entry.name, False) is not None:
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_size <= options.max_file_bytes and os.access(entry.path, os.R_OK):
                out[rel] = FileEntry(rel, Path(entry.path), st.st_size, st.st_mtime_ns)
    return False


def update(
    engine: Engine,
    root: Path,
    paths: Iterable[str] | None,
    *,
    lock_timeout: float,
    durable: bool,
    cancel: threading.Event | None = None,
) -> UpdateReport:
    """``Engine.update``: see there."""
    t0 = time.perf_counter()
    report = UpdateReport(root=str(root))
    store = engine._store_for_root(root, create=False)
    if store is None or store.root is None:
        raise NotIndexedError(f"{root} is not indexed yet: run `claude-context index {root}` first")
    settings = engine._settings(store, None, None, None)
    indexed = json.loads(store.meta.get_meta("indexed_settings", "{}") or "{}")
    if not store.model_id or not indexed:
        raise NeedsFullIndex(
            f"{root}: its first index run has not completed: run `claude-context index {root}`"
        )
    if indexed != settings:
        raise NeedsFullIndex(
            f"{root}: indexing settings changed: run `claude-context index {root}` to apply them"
        )
    options = discovery_options(engine.config, settings)
    targets = None if paths is None else [_relative(root, p) for p in paths]

    def plan(states: dict[str, FileState]) -> ChangePlan:
        if targets is None:
            return plan_full(root, options, states)
        p = plan_paths(root, options, states, targets)
        return plan_full(root, options, states) if p.needs_full else p

    states = store.meta.file_states()
    first = plan(states)
    report.full_scan, report.paths_checked = first.full, first.checked
    report.scan_s = round(time.perf_counter() - t0, 4)
    if first.empty and not (durable and _is_unsaved(store)):
        report.seconds = round(time.perf_counter() - t0, 3)
        return report  # nothing to do: no lock taken, nothing written

    embedder = engine._query_embedder(store)  # the model (and backend) that built this index
    model_id = embedder.model_id
    from claude_context.index.base import IndexBusyError

    try:
        store.lock.acquire(timeout=lock_timeout)
    except IndexBusyError as exc:
        raise IndexBusyError(f"{root}: {exc}") from None
    try:
        if not (store.folder / "index.sqlite").exists():  # cleared while we waited for the lock
            _drop_recreated(store)
            raise NotIndexedError(f"{root} is not indexed any more (its index was cleared)")
        # another writer may have run since the plan: re-diff against the table it left
        states = store.meta.file_states()
        changed = [e for e in first.changed if _differs(e, states)]
        deleted = [p for p in first.deleted if p in states]
        # the derived index must reflect the current generation before we add to it
        store.sync(model_id, durable=not _is_unsaved(store))
        if changed or deleted:
            pipeline = engine.pipeline(store, embedder, settings, False, cancel)
            try:
                pipeline.run(changed, deleted, states)
            except PipelineCancelled:
                raise IndexCancelled() from None
            c = pipeline.snapshot()
            report.files_changed, report.chunks_written = c.files_changed, c.chunks_written
            report.chunks_embedded = c.chunks_embedded
            report.files_deleted = len(deleted)
            report.files_touched = max(0, len(changed) - c.files_changed)
            report.applied = True
            report.changed_paths = sorted([e.path for e in changed][:5] + deleted[:5])[:5]
            _mark_unsaved(store)
        if durable:
            store.persist()
            _mark_saved(store)
            report.durable = True
        if report.changed:
            _record_change(store, report)
        if first.full:
            meta = store.meta.get_all_meta()
            if meta.get("status") != "indexed" or meta.get("error"):
                # a full reconcile leaves the index agreeing with the disk: an interrupted run is done
                store.meta.set_meta(status="indexed", error="", last_indexed_at=str(time.time()))
    finally:
        store.lock.release()
    report.seconds = round(time.perf_counter() - t0, 3)
    return report


def flush(engine: Engine, root: Path | None = None, lock_timeout: float = 5.0) -> int:
    """Durably save the vector index of codebases with unsaved updates (all, or ``root``'s).
    Returns how many were saved; a busy codebase is left for later (its next writer saves it)."""
    from claude_context.index.base import IndexBusyError

    with _unsaved_lock:
        stores = [s for s in _unsaved if s in engine._stores.values()]
    saved = 0
    for store in stores:
        if root is not None and store.root != root:
            continue
        try:
            store.lock.acquire(timeout=lock_timeout)
        except IndexBusyError as exc:
            log.info("not saving %s now: %s", store.folder, exc)
            continue
        try:
            model_id = store.model_id
            if model_id and store.folder.exists():
                store.sync(model_id, durable=True)  # repairs anything a foreign writer left, saves
            _mark_saved(store)
            saved += 1
        finally:
            store.lock.release()
    return saved


def has_unsaved(engine: Engine, root: Path) -> bool:
    store = engine._stores.get(root)
    return store is not None and _is_unsaved(store)


def _is_unsaved(store: CodebaseStore) -> bool:
    with _unsaved_lock:
        return store in _unsaved


def _mark_unsaved(store: CodebaseStore) -> None:
    with _unsaved_lock:
        _unsaved.add(store)


def _mark_saved(store: CodebaseStore) -> None:
    with _unsaved_lock:
        _unsaved.discard(store)


def _drop_recreated(store: CodebaseStore) -> None:
    """Taking the lock recreated a cleared codebase's folder (for the lock file): remove it again."""
    lock = store.folder / "write.lock"
    store.lock.release()
    with contextlib.suppress(OSError):
        lock.unlink()
        store.folder.rmdir()


def _record_change(store: CodebaseStore, report: UpdateReport) -> None:
    """When the index last changed (any writer): ``status`` shows it."""
    store.meta.set_meta(last_change_at=str(time.time()))


def _relative(root: Path, path: str) -> str:
    p = str(path)
    if os.path.isabs(p):
        root_s = str(root)
        if p == root_s:
            return ""
        if p.startswith(root_s.rstrip(os.sep) + os.sep):
            return _rel(p[len(root_s.rstrip(os.sep)) + 1 :])
        return "../" + p  # outside the root: ignored by the plan
    return _rel(p)
