"""The worker thread of one watched root: wait for quiet, apply the batch, retry, save later.

A mixin of ``WatchService`` (it shares the service's settings, observer and state writing); the
loop is split into its steps: wait (``_wait``), timers (``_timers``: polls, reconciles, the
deferred durable save), take the batch (``_take``) and apply it (``_batch``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from claude_context.errors import (
    ClaudeContextError,
    IndexBusyError,
    IndexCancelled,
    NeedsFullIndex,
    NotIndexedError,
)
from claude_context.ignore import IgnoreRules

if TYPE_CHECKING:
    from claude_context.reports import UpdateReport
    from claude_context.watcher.service import RootWatch

log = logging.getLogger(__name__)

FULL_SCAN_ABOVE = 5000  # more pending paths than this: one stat walk is cheaper than per-path stats


@dataclass(slots=True)
class _Timers:
    """When the worker of one root has something to do besides a batch."""

    next_reconcile: float
    next_poll: float
    persist_due: float | None = None
    first_unsaved: float | None = None
    backoff: float = 0.0
    retry_at: float = 0.0


class RootWorker:
    """The per-root loop of ``WatchService`` (see the module docstring)."""

    engine: Any
    debounce: float
    max_delay: float
    poll_interval: float
    reconcile_interval: float
    persist_idle: float
    persist_max: float
    lock_wait: float
    busy_retry: float
    on_update: Any

    def _worker(self, w: RootWatch) -> None:
        try:
            self._run(w)
        except Exception as exc:  # never let a watcher kill the process
            log.exception("watcher of %s stopped", w.root)
            self._set_state(w, "error", f"watcher stopped: {type(exc).__name__}: {exc}")

    def _run(self, w: RootWatch) -> None:
        self._set_state(w, "starting", "reconciling with the disk")
        self._refresh_rules(w)
        if w.root.is_dir():
            self._schedule(w)
        else:
            self._root_gone(w)
        # reconcile first: work done while nothing was watching (git pull, branch switch)
        with w.cond:
            w.full = True
            w.first_event = w.last_event = time.monotonic() - self.max_delay
        t = time.monotonic()
        timers = _Timers(t + self.reconcile_interval, t + self.poll_interval)
        while not w.stop.is_set():
            batch_due = self._wait(w, timers)
            if batch_due is None:
                continue
            if w.stop.is_set():
                break
            now = time.monotonic()
            self._timers(w, timers, now)
            batch = self._take(w, batch_due, now)
            if batch is None:
                continue
            if not w.root.is_dir():
                self._root_gone(w)
                continue
            if not self._batch(w, timers, *batch):
                return
        w.idle.set()

    def _wait(self, w: RootWatch, timers: _Timers) -> float | None:
        """When the pending batch is due; None after waiting (the loop re-checks everything)."""
        with w.cond:
            now = time.monotonic()
            batch_due = float("inf")
            if (w.pending or w.full) and not w.root_missing:
                quiet = min(w.last_event + self.debounce, w.first_event + self.max_delay)
                batch_due = max(timers.retry_at, quiet)
            elif not w.pending and not w.full:
                w.idle.set()
            wake = min(batch_due, timers.next_reconcile, timers.persist_due or float("inf"))
            if w.polling or w.root_missing:
                wake = min(wake, timers.next_poll)
            if wake > now:
                w.cond.wait(min(wake - now, 5.0))
                return None
        return batch_due

    def _timers(self, w: RootWatch, timers: _Timers, now: float) -> None:
        if (w.polling or w.root_missing) and now >= timers.next_poll:
            timers.next_poll = now + self.poll_interval
            if w.root_missing:
                self._root_back(w)
            elif not w.root.is_dir():
                self._root_gone(w)
            else:
                w.stats.polls += 1
                self._due_full(w, now)
        if now >= timers.next_reconcile:
            timers.next_reconcile = now + self.reconcile_interval
            w.stats.reconciles += 1
            self._due_full(w, now)
        if timers.persist_due is not None and now >= timers.persist_due:
            if self._persist(w):
                timers.persist_due = timers.first_unsaved = None
            else:
                timers.persist_due = now + max(1.0, self.busy_retry) * 5

    def _due_full(self, w: RootWatch, now: float) -> None:
        with w.cond:
            if not w.full:
                w.full = True
                w.first_event = w.last_event = now - self.max_delay

    def _take(self, w: RootWatch, batch_due: float, now: float) -> tuple[set[str], bool] | None:
        with w.cond:
            if now < batch_due or w.root_missing or not (w.pending or w.full):
                return None
            paths, full = w.pending, w.full
            w.pending, w.full = set(), False
            w.first_event = 0.0
        return paths, full

    def _batch(self, w: RootWatch, timers: _Timers, paths: set[str], full: bool) -> bool:
        """Apply one batch; False when the codebase's index is gone (the watch ends)."""
        try:
            report = self._apply(w, None if full or len(paths) > FULL_SCAN_ABOVE else paths)
        except NotIndexedError:
            self._set_state(w, "error", "the codebase's index was removed: not watching it any more")
            threading.Thread(target=self.remove, args=(w.root,), daemon=True).start()
            return False
        except Exception as exc:
            with w.cond:  # keep the work: merged with newer events, retried
                w.pending |= paths
                w.full = w.full or full
                w.first_event = w.first_event or time.monotonic()
            self._failed(w, timers, exc)
            return True
        timers.backoff = timers.retry_at = 0.0
        ok = self._ok_state(w)
        if w.state != ok or (w.message and not w.polling):
            self._set_state(w, ok, w.poll_reason if w.polling else "")
        if report.applied and not report.durable:
            now = time.monotonic()
            timers.first_unsaved = timers.first_unsaved or now
            timers.persist_due = min(now + self.persist_idle, timers.first_unsaved + self.persist_max)
        return True

    def _failed(self, w: RootWatch, timers: _Timers, exc: Exception) -> None:
        if isinstance(exc, IndexBusyError):
            w.stats.busy_retries += 1
            self._set_state(w, self._ok_state(w), f"waiting: {exc}")
            timers.retry_at = time.monotonic() + self.busy_retry
        elif isinstance(exc, IndexCancelled):  # stopping: the unapplied files show in ``status``
            log.info("watch update of %s stopped half-way; the next update finishes it", w.root)
            self._set_state(w, self._ok_state(w), "stopping")
        elif isinstance(exc, NeedsFullIndex):  # e.g. its first index run is still going
            self._set_state(w, self._ok_state(w), f"waiting: {exc}")
            timers.retry_at = time.monotonic() + max(5.0, self.busy_retry)
        else:
            w.stats.errors += 1
            timers.backoff = min(60.0, max(1.0, timers.backoff * 2))
            log.warning("watch update of %s failed: %s", w.root, exc)
            self._set_state(w, "error", f"update failed ({type(exc).__name__}: {exc}); retrying")
            timers.retry_at = time.monotonic() + timers.backoff

    def _apply(self, w: RootWatch, paths: set[str] | None) -> UpdateReport:
        w.stats.batches += 1
        targets = sorted(paths) if paths is not None else None
        report = self.engine.update(w.root, targets, lock_timeout=self.lock_wait, cancel=w.stop)
        self._refresh_rules(w)
        w.last_report = report
        if report.changed:
            w.stats.applied += 1
            w.last_update_at = time.time()
            if self.on_update is not None:
                try:
                    self.on_update(w.root, report)
                except Exception as exc:
                    log.warning("on_update callback failed: %s", exc)
        return report

    def _persist(self, w: RootWatch) -> bool:
        try:
            self.engine.flush(w.root, lock_timeout=self.lock_wait)
        except Exception as exc:
            log.warning("saving the vector index of %s failed: %s", w.root, exc)
            return False
        w.stats.persists += 1
        cb = self.engine.codebase(w.root)
        return cb is None or not cb.unsaved

    def _ok_state(self, w: RootWatch) -> str:
        return "polling" if w.polling else "watching"

    def _refresh_rules(self, w: RootWatch) -> None:
        """The ignore rules events are filtered with: those of the codebase's indexing settings."""
        cb = self.engine.codebase(w.root)
        if cb is None:
            return
        try:
            settings = cb.chunk_settings()
        except ClaudeContextError:  # a malformed project file: the update reports it; keep the rules
            return
        key = json.dumps(settings.to_dict(), sort_keys=True)
        if key != w.settings_key or w.rules is None:
            try:
                w.rules = IgnoreRules(w.root, settings.discovery(self.engine.config))
                w.settings_key = key
            except OSError:
                pass

    def _root_gone(self, w: RootWatch) -> None:
        """The root vanished (or became unreadable): report it, keep the index as it is (a removed
        checkout is not a reason to empty the index), and poll for the root to come back."""
        self._unschedule(w)
        with w.cond:
            w.root_missing = True
            w.pending.clear()
            w.full = False
            w.idle.set()
        self._set_state(
            w, "error", f"root folder {w.root} was removed or is unreadable; waiting for it to reappear"
        )

    def _root_back(self, w: RootWatch) -> None:
        if not (w.root.is_dir() and os.access(w.root, os.R_OK | os.X_OK)):
            return
        self._set_state(w, "starting", "root folder is back: reconciling")
        self._refresh_rules(w)
        self._schedule(w)
        with w.cond:
            w.root_missing = False
            w.full = True
            w.first_event = w.last_event = time.monotonic() - self.max_delay
            w.idle.clear()

    # provided by WatchService
    def _set_state(self, w: RootWatch, state: str, message: str) -> None:
        raise NotImplementedError

    def _schedule(self, w: RootWatch) -> None:
        raise NotImplementedError

    def _unschedule(self, w: RootWatch) -> None:
        raise NotImplementedError

    def remove(self, root: Any) -> None:
        raise NotImplementedError
