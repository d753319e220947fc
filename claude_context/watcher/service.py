"""Watch mode: keep indexed codebases fresh as files change (``claude-context watch``, the server).

Per root: a watchdog observer (inotify on Linux) feeds a set of changed paths; ignore rules run
in the event thread, before any work, so an edit to an ignored file costs nothing. A worker thread
applies the set once no event arrived for ``debounce`` seconds (``max_delay`` bounds the wait in an
event storm), so a burst such as ``git checkout`` becomes one ``Engine.update`` over exactly those
paths. The worker takes the codebase's write lock only while applying a batch (other processes may
index in between); if another writer holds it, the batch waits and is retried, merged with newer
events. Atomic saves (temp file + rename) arrive as a move whose destination is re-read; editor
swap and lock files are dropped; a moved folder drops every file under its old path and walks the
new one.

Durability: updates do not rewrite the vector file (slow on big codebases); the worker saves it
once the codebase has been idle for ``persist_idle`` seconds (at most ``persist_max`` after the
first unsaved change) and on stop. A crash in between loses nothing: SQLite and the embedding
cache hold every change and the next writer repairs the vector index by id difference.

Failures never stop the process: a removed root, lost permissions or an inotify limit become the
watcher's ``error``/``polling`` state (with a message); without usable events the worker polls with
the same stat-level scan (``poll_interval``). Even with events it reconciles every
``reconcile_interval`` seconds, which catches anything the kernel dropped (a queue overflow also
triggers it at once). Each watcher writes its state, pid and a heartbeat into the codebase's
metadata (key ``watcher.<pid>``), so ``status`` in any process shows whether a live watcher keeps
the index fresh and when the last change was applied.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claude_context.index.truth import presence
from claude_context.watcher.worker import RootWorker

if TYPE_CHECKING:
    from claude_context.engine import Engine
    from claude_context.ignore import IgnoreRules
    from claude_context.reports import UpdateReport

log = logging.getLogger(__name__)

IGNORE_FILES = (".gitignore", ".contextignore")
# Transient files of editors and tools: never indexed by a watcher batch (their events cost nothing).
EDITOR_TEMP = (
    ".#*",  # emacs lock (a dangling symlink)
    "#*#",  # emacs auto-save
    "*~",  # backup / kate / gedit temp
    "4913",  # vim's "can I write here" probe
    "*.sw[a-p]",  # vim swap (also .swx, .swpx)
    "*.swx",
    "*.swpx",
    "*___jb_tmp___",  # JetBrains safe write
    "*___jb_old___",
    ".~lock.*#",  # LibreOffice
    "*.crdownload",
    "*.part",
    ".goutputstream-*",  # GNOME
)


def is_editor_temp(name: str) -> bool:
    """An editor's swap, lock or safe-write temp file (never worth a batch)."""
    return any(fnmatch.fnmatchcase(name, pat) for pat in EDITOR_TEMP) or ".tmp." in name


# -- one root ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class WatchStats:
    """Counters a test (or a curious user) can read: what the events led to."""

    events: int = 0  # events received
    ignored: int = 0  # dropped before any work (ignore rules, editor temp files, our own files)
    batches: int = 0  # Engine.update calls
    applied: int = 0  # of which changed the index
    busy_retries: int = 0
    errors: int = 0
    polls: int = 0
    reconciles: int = 0
    persists: int = 0
    overflows: int = 0


@dataclass
class RootWatch:
    """The watch of one codebase root: pending changes, state and the worker that applies them."""

    root: Path
    state: str = "starting"  # starting | watching | polling | error | stopped
    message: str = ""
    since: float = field(default_factory=time.time)
    last_update_at: float | None = None
    last_report: UpdateReport | None = None
    stats: WatchStats = field(default_factory=WatchStats)
    pending: set[str] = field(default_factory=set)
    full: bool = False  # a full stat-level reconcile is due
    first_event: float = 0.0
    last_event: float = 0.0
    polling: bool = False
    poll_reason: str = ""
    root_missing: bool = False
    watch: Any = None  # watchdog ObservedWatch
    rules: IgnoreRules | None = None
    settings_key: str = ""
    thread: threading.Thread | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)
    stop: threading.Event = field(default_factory=threading.Event)
    idle: threading.Event = field(default_factory=threading.Event)  # set when nothing is pending

    def info(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "state": self.state,
            "message": self.message,
            "since": self.since,
            "last_update_at": self.last_update_at,
            "pending": len(self.pending) + (1 if self.full else 0),
            "mode": "polling" if self.polling else "events",
        }


class WatchService(RootWorker):
    """Watch codebases and keep their indexes fresh. Thread-based; ``start``/``stop``.

    ``roots``: codebases to watch; ``auto``: also every codebase indexed under the engine's home
    (rescanned every ``discover_interval`` seconds, so codebases indexed later are picked up and
    cleared ones dropped). Each root is reconciled (stat-level scan) when its watch starts.
    ``on_update(root, report)`` is called after every batch that changed the index.
    """

    def __init__(
        self,
        engine: Engine,
        roots: Iterable[str | Path] = (),
        *,
        auto: bool = False,
        debounce: float = 0.25,
        max_delay: float = 2.0,
        poll_interval: float = 2.0,
        reconcile_interval: float = 300.0,
        persist_idle: float = 30.0,
        persist_max: float = 300.0,
        lock_wait: float = 1.0,
        busy_retry: float = 1.0,
        discover_interval: float = 5.0,
        polling: bool = False,
        on_update: Callable[[Path, UpdateReport], None] | None = None,
        on_state: Callable[[Path, str, str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.auto = auto
        self.debounce = debounce
        self.max_delay = max(max_delay, debounce)
        self.poll_interval = poll_interval
        self.reconcile_interval = reconcile_interval
        self.persist_idle = persist_idle
        self.persist_max = max(persist_max, persist_idle)
        self.lock_wait = lock_wait
        self.busy_retry = busy_retry
        self.discover_interval = discover_interval
        self.force_polling = polling
        self.on_update = on_update
        self.on_state = on_state
        self._initial = [Path(r) for r in roots]
        self._watches: dict[Path, RootWatch] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._observer: Any = None
        self._observer_error: str = ""
        self._threads: list[threading.Thread] = []
        self._home = str(engine.config.home.resolve())
        self._log_hook: _OverflowHook | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> WatchService:
        """Start watching (returns at once: reconciliation runs in the workers)."""
        self._log_hook = _OverflowHook(self._on_overflow)
        for name in ("watchdog.observers.inotify_c", "watchdog.observers.inotify"):
            logging.getLogger(name).addHandler(self._log_hook)
        for root in self._initial:
            self.add(root)
        beat = threading.Thread(target=self._heartbeat_loop, name="cc-watch-heartbeat", daemon=True)
        beat.start()
        self._threads.append(beat)
        if self.auto:
            disc = threading.Thread(target=self._discover_loop, name="cc-watch-discover", daemon=True)
            disc.start()
            self._threads.append(disc)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every watch, save unsaved vector indexes and clear this process's watcher state.

        ``timeout`` bounds the wait for all threads together (they are daemon threads: one stuck
        in I/O must not keep a Ctrl-C'd process alive)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            watches = list(self._watches.values())
        for w in watches:
            w.stop.set()
            with w.cond:
                w.cond.notify_all()
        threads = [w.thread for w in watches if w.thread is not None] + list(self._threads)
        for t in threads:  # a running update is cancelled (its paths are reconciled next start)
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            log.warning("watcher threads still busy at stop, left behind: %s", ", ".join(stuck))
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.stop()
                self._observer.join(5)
        for w in watches:
            with contextlib.suppress(Exception):
                self.engine.flush(w.root)
            w.state = "stopped"
            self._clear_state(w)
        if self._log_hook is not None:
            for name in ("watchdog.observers.inotify_c", "watchdog.observers.inotify"):
                logging.getLogger(name).removeHandler(self._log_hook)

    def __enter__(self) -> WatchService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def roots(self) -> list[Path]:
        with self._lock:
            return list(self._watches)

    def get(self, root: str | Path) -> RootWatch | None:
        with self._lock:
            return self._watches.get(Path(root).resolve())

    def add(self, root: str | Path) -> RootWatch:
        """Watch one more codebase root (it must be indexed); a no-op if already watched."""
        path = Path(os.path.expanduser(str(root))).resolve()
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError("the watch service is stopped")
            w = self._watches.get(path)
            if w is not None:
                return w
            w = RootWatch(path)
            self._watches[path] = w
        w.thread = threading.Thread(target=self._worker, args=(w,), name=f"cc-watch:{path.name}", daemon=True)
        w.thread.start()
        return w

    def remove(self, root: str | Path) -> None:
        with self._lock:
            w = self._watches.pop(Path(root).resolve(), None)
        if w is None:
            return
        w.stop.set()
        with w.cond:
            w.cond.notify_all()
        if w.thread is not None and w.thread is not threading.current_thread():
            w.thread.join(30)
        self._unschedule(w)
        w.state = "stopped"
        self._clear_state(w)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no watched root has pending changes (tests, the bench)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            watches = list(self._watches.values())
        return all(w.idle.wait(max(0.0, deadline - time.monotonic())) for w in watches)

    # -- events -----------------------------------------------------------------------------------
    def _observer_instance(self) -> Any:
        with self._lock:  # workers of several roots start at once: one observer for all
            if self._observer is None:
                from watchdog.observers import Observer

                observer = Observer()
                observer.start()
                self._observer = observer
            return self._observer

    def _schedule(self, w: RootWatch) -> None:
        """Start receiving events for ``w``; on failure switch it to polling, with the reason."""
        if self.force_polling:
            self._go_polling(w, "polling (file events disabled)")
            return
        limit_note = _watch_limit_problem(w.root)
        if limit_note:
            self._go_polling(w, f"polling: {limit_note}")
            return
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileAttribEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
        )

        handler = _Handler(self, w)
        try:
            w.watch = self._observer_instance().schedule(
                handler,
                str(w.root),
                recursive=True,
                # no open/read events: the indexer reading files must not look like a change
                event_filter=[
                    FileCreatedEvent,
                    FileDeletedEvent,
                    FileModifiedEvent,
                    FileAttribEvent,
                    FileMovedEvent,
                    FileClosedEvent,
                    DirCreatedEvent,
                    DirDeletedEvent,
                    DirMovedEvent,
                ],
            )
            w.polling = False
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                reason = f"{reason} (raise fs.inotify.max_user_watches / max_user_instances)"
            self._go_polling(w, f"polling: file events unavailable: {reason}")
        except Exception as exc:  # e.g. no inotify in this libc
            self._go_polling(w, f"polling: file events unavailable: {exc}")

    def _go_polling(self, w: RootWatch, reason: str) -> None:
        w.polling, w.poll_reason = True, reason
        self._set_state(w, "polling", reason)

    def _unschedule(self, w: RootWatch) -> None:
        if w.watch is not None and self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.unschedule(w.watch)
        w.watch = None

    def _event(self, w: RootWatch, kind: str, src: str, dest: str, is_dir: bool) -> None:
        """Called in the observer thread: filter, then queue paths (cheap: no I/O)."""
        w.stats.events += 1
        paths = [src] if not dest else [src, dest]
        queued = False
        for p in paths:
            if not p:
                continue
            rel = self._rel(w, p)
            if rel is None:
                w.stats.ignored += 1
                continue
            if rel == "":
                if kind == "deleted":  # the root itself: the worker notices and reports it
                    with w.cond:
                        w.full = True
                        w.last_event = time.monotonic()
                        w.idle.clear()
                        w.cond.notify_all()
                continue
            name = rel.rpartition("/")[2]
            if name in IGNORE_FILES or rel == ".git/info/exclude":
                if w.rules is not None:
                    w.rules.invalidate(rel)
                with w.cond:  # which files the rules cover changed: only a full walk knows
                    w.full = True
                    self._touch(w)
                queued = True
                continue
            if not is_dir and is_editor_temp(name):
                w.stats.ignored += 1
                continue
            rules = w.rules
            if rules is not None and rules.is_ignored(rel, is_dir):
                w.stats.ignored += 1
                continue
            with w.cond:
                w.pending.add(rel)
                self._touch(w)
            queued = True
        if queued:
            with w.cond:
                w.cond.notify_all()

    @staticmethod
    def _touch(w: RootWatch) -> None:
        now = time.monotonic()
        if (not w.pending and not w.full) or w.first_event == 0.0:
            w.first_event = now
        w.last_event = now
        w.idle.clear()

    def _rel(self, w: RootWatch, path: str) -> str | None:
        """Root-relative POSIX path, "" for the root, None for paths to drop (outside, our home)."""
        root = str(w.root)
        if path == root:
            return ""
        if not path.startswith(root + os.sep):
            return None
        home = self._home
        if home.startswith(root + os.sep) and (path == home or path.startswith(home + os.sep)):
            return None  # the index itself lives inside this root: its writes are not changes
        rel = path[len(root) + 1 :]
        return rel.replace(os.sep, "/") if os.sep != "/" else rel

    def _on_overflow(self) -> None:
        """The kernel dropped events: every root reconciles with a full stat-level scan."""
        with self._lock:
            watches = list(self._watches.values())
        for w in watches:
            w.stats.overflows += 1
            with w.cond:
                w.full = True
                self._touch(w)
                w.cond.notify_all()

    # -- state ------------------------------------------------------------------------------------
    def _set_state(self, w: RootWatch, state: str, message: str) -> None:
        if (state, message) == (w.state, w.message):
            return
        since = time.time() if state != w.state else w.since
        # the shared record first, so whoever sees the new state in memory also sees it in status
        self._write_state(w, state=state, message=message, since=since)
        w.state, w.message, w.since = state, message, since
        if state == "error":
            log.warning("watcher %s: %s", w.root, message)
        if self.on_state is not None:
            with contextlib.suppress(Exception):
                self.on_state(w.root, state, message)

    def _write_state(self, w: RootWatch, **override: Any) -> None:
        cb = self.engine.codebase(w.root)
        if cb is not None:
            with contextlib.suppress(Exception):
                cb.record_watcher(w.info() | override)

    def _clear_state(self, w: RootWatch) -> None:
        """Remove this process's entry, and entries of processes that are gone."""
        cb = self.engine.codebase(w.root)
        if cb is not None:
            with contextlib.suppress(Exception):
                cb.clear_watchers()

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(presence.HEARTBEAT_S):
            with self._lock:
                watches = list(self._watches.values())
            for w in watches:
                if w.state != "stopped":
                    self._write_state(w)
                if not w.root_missing and w.watch is not None and not w.root.is_dir():
                    with w.cond:  # moved or removed without an event for the root itself
                        w.full = True
                        self._touch(w)
                        w.cond.notify_all()

    def _discover_loop(self) -> None:
        while not self._stop.is_set():
            try:
                indexed = set(self.engine.indexed_roots())
                for root in indexed - set(self.roots):
                    self.add(root)
                for root in set(self.roots) - indexed:
                    self.remove(root)
            except Exception as exc:
                log.warning("could not list indexed codebases: %s", exc)
            if self._stop.wait(self.discover_interval):
                return


class _Handler:
    """watchdog event handler of one root (duck-typed: the observer only calls ``dispatch``)."""

    def __init__(self, service: WatchService, watch: RootWatch) -> None:
        self.service = service
        self.watch = watch

    def dispatch(self, event: Any) -> None:
        try:
            src = os.fsdecode(event.src_path)
            dest = os.fsdecode(getattr(event, "dest_path", "") or "")
            self.service._event(self.watch, event.event_type, src, dest, event.is_directory)
        except Exception as exc:  # never break the observer thread
            log.warning("watch event %r failed: %s", event, exc)


class _OverflowHook(logging.Handler):
    """watchdog reports an inotify queue overflow only as a log line: turn it into a reconcile."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            if "overflow" in record.getMessage().lower():
                self.callback()


def _watch_limit_problem(root: Path) -> str:
    """Why inotify cannot watch every folder of ``root`` (watchdog silently skips folders beyond
    the limit), or "" if it can. Counts folders up to the limit only."""
    try:
        limit = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text().strip())
    except (OSError, ValueError):
        return ""
    for count, (folder, dirs, _) in enumerate(os.walk(root), 1):
        if count > limit:
            return f"{root} has more folders than fs.inotify.max_user_watches ({limit})"
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
    return ""


def format_update(root: Path, report: UpdateReport) -> str:
    """The line ``claude-context watch`` prints per update: files, chunks, milliseconds."""
    parts = []
    if report.files_changed:
        parts.append(f"{report.files_changed} file{'s' if report.files_changed != 1 else ''} changed")
    if report.files_deleted:
        parts.append(f"{report.files_deleted} deleted")
    sample = ", ".join(report.changed_paths[:3])
    more = report.files_changed + report.files_deleted - len(report.changed_paths[:3])
    if sample:
        parts[-1] += f" ({sample}{f' +{more} more' if more > 0 else ''})"
    scan = "full scan" if report.full_scan else f"{report.paths_checked} checked"
    return (
        f"{time.strftime('%H:%M:%S')} {root.name}: {', '.join(parts) or 'no change'}; "
        f"{report.chunks_written} chunks written, {report.chunks_embedded} embedded; "
        f"{report.seconds * 1000:.0f} ms ({scan})"
    )
