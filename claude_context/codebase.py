"""One indexed codebase: its store, typed settings, index runs, change application and status.

``Engine`` keeps one ``Codebase`` per root; the watcher and the MCP server use its public methods.

* ``index``: the full, durable run (settings, model and backend changes, progress, a durable save
  at the end).
* ``apply_changes``: the light run watch mode and start-up reconciliation make after every save.
  It plans without the write lock (``changes.py``: nothing changed = nothing locked, nothing
  written), applies under it through the same ``IndexPipeline``, and defers the durable save of
  the vector index (a full rewrite of a file that is ~150 MB on a 70k-chunk codebase) to
  ``flush``: SQLite and the embedding cache already hold every change, and
  ``CodebaseStore.repair`` repairs a lagging vector file by id difference after a crash.

State (status, progress, errors) lives in the codebase's SQLite, never only in this process, so
several processes agree about it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from claude_context import project
from claude_context.changes import ChangePlan, differs, plan_full, plan_paths, relative
from claude_context.chunkers import CHUNKER_VERSION
from claude_context.config import Config
from claude_context.discovery import Skipped, discover
from claude_context.embedding import Embedder, parse_model_id
from claude_context.embedding.static import fill, vectors_for
from claude_context.errors import (
    IndexBusyError,
    IndexCancelled,
    NeedsFullIndex,
    NotIndexedError,
    StorageError,
)
from claude_context.faults import classify, disk_nearly_full
from claude_context.index.registry import IndexOptions, resolve_quantization
from claude_context.index.truth import health, presence
from claude_context.index.truth.store import CodebaseStore
from claude_context.pipeline import IndexPipeline
from claude_context.reports import CodebaseStatus, IndexProgress, IndexReport, ProgressFn, UpdateReport
from claude_context.search.query_adapter import adapter_for
from claude_context.settings import BackendChoice, ChunkSettings, firm_json, loads

log = logging.getLogger(__name__)

BYTES_PER_CHUNK = 760  # measured mean on the transformers corpus (53 MB -> 69.6k chunks)

EmbedderFor = Callable[[str | None], Embedder]  # a model name or full model id -> its embedder


class Codebase:
    """One codebase's index folder and everything done to it. Thread-safe like its store."""

    def __init__(
        self, root: Path, store: CodebaseStore, config: Callable[[], Config], embedder: EmbedderFor
    ) -> None:
        self.store = store
        self._root = root
        self._config = config  # the engine's current config (callers may swap it)
        self._layer = project.ProjectLayer()
        self._embedder = embedder
        self._unsaved = False  # updates left the vector index unsaved (``flush`` saves it)
        self._unsaved_lock = threading.Lock()

    @property
    def config(self) -> Config:
        return self._config()

    @property
    def root(self) -> Path | None:
        """The indexed root as recorded (None before its first run starts)."""
        return self.store.root

    @property
    def folder(self) -> Path:
        return self.store.folder

    # -- settings ---------------------------------------------------------------------------------
    def index_config(self) -> tuple[Config, frozenset[str]]:
        """The config with the project file layered in, and the settings beating recorded ones."""
        return self._layer.get(self._config(), self.store.root or self._root)

    def chunk_settings(
        self,
        splitter: str | None = None,
        ignore_patterns: list[str] | None = None,
        extensions: list[str] | None = None,
    ) -> ChunkSettings:
        """This run's chunk settings (``ChunkSettings.resolve``: given > project > recorded)."""
        config, firm = self.index_config()
        return ChunkSettings.from_meta(self.store.meta, config, firm, splitter, ignore_patterns, extensions)

    def _indexed_settings(self) -> dict:
        return loads(self.store.meta.get_meta("indexed_settings"))

    # -- the full index run -----------------------------------------------------------------------
    def index(
        self,
        root: Path,
        *,
        force: bool = False,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        splitter: str | None = None,
        ignore_patterns: list[str] | None = None,
        extensions: list[str] | None = None,
        quantization: str | None = None,
        store_kind: str | None = None,
        lock_timeout: float = 0.0,
    ) -> IndexReport:
        """Bring the index of ``root`` up to date with the disk (incremental unless ``force``)."""
        t0 = time.perf_counter()
        meta = self.store.meta
        self._lock(root, lock_timeout)
        try:
            settings = self.chunk_settings(splitter, ignore_patterns, extensions)
            meta.set_meta(
                root=str(root),
                status="indexing",
                error="",
                started_at=str(time.time()),
                pid=str(os.getpid()),
                settings=json.dumps(settings.to_dict()),
                settings_firm=firm_json(self.index_config()[1]),
                progress=json.dumps(asdict(IndexProgress("scanning"))),
            )
            health.clear_error(self.folder)
            old = self.store.index_options() if meta.get_meta("index_options") else None
            asked = BackendChoice.resolve(
                meta.get_meta("quantization_requested"), old, self.config, quantization, store_kind
            )
            _choose_backend(self.store, self.config, root, settings, asked)
            report = self._index_locked(root, settings, force, progress, cancel, t0)
            r = report
            done = IndexProgress(
                "done", r.files_changed, r.files_changed, r.chunks_written, r.chunks_embedded, r.seconds
            )
            finished = dict(status="indexed", last_indexed_at=str(time.time()), applying="")
            meta.set_meta(progress=json.dumps(asdict(done)), **finished)
            return report
        except BaseException as exc:
            if (mapped := _record_failure(self.store, exc)) is not None:
                raise mapped from exc  # one sentence for every face (disk full, read-only, damaged)
            raise
        finally:
            self.store.lock.release()

    def _lock(self, root: Path, timeout: float) -> None:
        try:
            self.store.lock.acquire(timeout=timeout)
        except IndexBusyError as exc:
            raise IndexBusyError(f"{root}: {exc}") from None

    def _index_locked(
        self,
        root: Path,
        settings: ChunkSettings,
        force: bool,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        t0: float,
    ) -> IndexReport:
        embedder = self._embedder(None)
        model_id = embedder.model_id  # known without loading the model: a no-op run never loads it
        report = IndexReport(root=str(root), model_id=model_id)
        force = self._prepare_model(root, embedder, settings, report) or force
        skipped: list[Skipped] = []
        states = self.store.meta.file_states()
        plan = plan_full(root, settings.discovery(self.config), states, force=force, skipped=skipped)
        report.files_unchanged = plan.checked - len(plan.changed)
        report.files_deleted = len(plan.deleted)

        pipeline = self.pipeline(embedder, settings, force, cancel)
        pipeline.static = vectors_for(self.store, self.config)  # starts the table's one-time build
        tick = _ProgressTracker(self.store, pipeline, progress, len(plan.changed), t0)
        tick(True)
        pipeline.run(plan.changed, plan.deleted, states, tick=tick)
        c = pipeline.snapshot()
        report.files_changed, report.chunks_written = c.files_changed, c.chunks_written
        report.chunks_embedded, report.model_seconds = c.chunks_embedded, round(c.model_seconds, 2)
        skipped.extend(pipeline.skipped)
        tick()
        tick.phase("saving")
        self.store.persist()
        self.store.meta.set_meta(indexed_settings=json.dumps(settings.to_dict()))
        fill(self.store, self.config)  # the static table beside the complete index (searching.py)
        meta = self.store.meta
        report.files_total, report.chunks_total = meta.file_count()[0], meta.chunk_count()
        # this run's skips plus those recorded by earlier runs: the count is the list's length
        listed = {s.path: s.reason for s in skipped} | dict(self.store.meta.skipped_files())
        report.skipped = [{"path": p, "reason": r} for p, r in sorted(listed.items())]
        report.files_skipped = len(report.skipped)
        report.seconds = round(time.perf_counter() - t0, 3)
        return report

    def _prepare_model(
        self, root: Path, embedder: Embedder, settings: ChunkSettings, report: IndexReport
    ) -> bool:
        """Record the model, repair the derived index after a crash; True if every file must be
        re-chunked (the chunk settings changed)."""
        store, model_id = self.store, embedder.model_id
        rechunk = False
        old_settings = self._indexed_settings()
        if store.model_id not in (None, model_id):
            report.note = (
                f"embedding model changed ({store.model_id} -> {model_id}): re-embedding every chunk, "
                "so vectors of different models never mix (vectors cached for it before are reused)"
            )
            log.warning("%s: %s", root, report.note)
            store.reset_index()
            store.meta.set_meta(dim=str(embedder.dim))
        elif old_settings and settings.rechunk_keys(old_settings):
            rechunk = True  # chunking settings changed: every file must be re-chunked (a change of
            # which files are indexed needs only the full scan every run makes)
        store.meta.set_meta(model_id=model_id)
        if store.dim is None:  # known up front, so keywords are searchable before any vector exists
            store.meta.set_meta(dim=str(embedder.dim))
        store.repair(model_id, durable=True)  # after a crash, before comparing state
        return rechunk

    def pipeline(
        self, embedder: Embedder, settings: ChunkSettings, force: bool, cancel: threading.Event | None
    ) -> IndexPipeline:
        """The indexing pipeline for one run (full index and watcher updates alike)."""
        return IndexPipeline(
            self.store,
            embedder,
            self.store.cache,  # type: ignore[arg-type]
            settings=settings,
            force=force,
            max_file_bytes=settings.max_file_bytes,
            cancel=cancel,
        )

    # -- changes on disk (watch mode, start-up reconcile) -----------------------------------------
    def apply_changes(
        self,
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
        settings, indexed = _update_settings(self.chunk_settings(), self._indexed_settings())
        rescope = _rescope(root, settings, indexed, self.store.model_id)
        if rescope:  # which files belong to the index changed (ignore patterns, ...): scan it all
            paths = None
        first = self._plan(root, settings, None if paths is None else [relative(root, p) for p in paths])
        report.full_scan, report.paths_checked = first.full, first.checked
        report.scan_s = round(time.perf_counter() - t0, 4)
        if first.empty and not rescope and not (durable and self.unsaved):
            report.seconds = round(time.perf_counter() - t0, 3)
            return report  # nothing to do: no lock taken, nothing written
        self._lock(root, lock_timeout)
        try:
            self._apply_locked(root, first, settings, durable, cancel, report)
        finally:
            self.store.lock.release()
        report.seconds = round(time.perf_counter() - t0, 3)
        return report

    def _plan(self, root: Path, settings: ChunkSettings, targets: list[str] | None) -> ChangePlan:
        options, states = settings.discovery(self.config), self.store.meta.file_states()
        if targets is None:
            return plan_full(root, options, states)
        p = plan_paths(root, options, states, targets)
        return plan_full(root, options, states) if p.needs_full else p

    def _apply_locked(
        self,
        root: Path,
        first: ChangePlan,
        settings: ChunkSettings,
        durable: bool,
        cancel: threading.Event | None,
        report: UpdateReport,
    ) -> None:
        store = self.store
        if not (store.folder / "index.sqlite").exists():  # cleared while we waited for the lock
            self._drop_recreated()
            raise NotIndexedError(f"{root} is not indexed any more (its index was cleared)")
        embedder = self.query_embedder()  # the model (and backend) that built this index
        # another writer may have run since the plan: re-diff against the table it left
        states = store.meta.file_states()
        changed = [e for e in first.changed if differs(e, states)]
        deleted = [p for p in first.deleted if p in states]
        # the derived index must reflect the current generation before we add to it
        store.repair(embedder.model_id, durable=not self.unsaved)
        if changed or deleted:
            store.meta.set_meta(applying=str(len(changed) + len(deleted)))  # "indexed" once done
            pipeline = self.pipeline(embedder, settings, False, cancel)
            pipeline.run(changed, deleted, states)
            store.meta.set_meta(applying="")
            c = pipeline.snapshot()
            report.files_changed, report.chunks_written = c.files_changed, c.chunks_written
            report.chunks_embedded = c.chunks_embedded
            report.files_deleted = len(deleted)
            report.files_touched = max(0, len(changed) - c.files_changed)
            report.applied = True
            report.changed_paths = sorted([e.path for e in changed][:5] + deleted[:5])[:5]
            self._set_unsaved(True)
        if durable:
            store.persist()
            self._set_unsaved(False)
            report.durable = True
        if report.changed:  # when the index last changed (any writer): ``status`` shows it
            store.meta.set_meta(last_change_at=str(time.time()))
        _record_scope(store, settings, self.index_config()[1])
        if first.full:
            meta = store.meta.get_all_meta()
            if meta.get("status") != "indexed" or meta.get("error"):
                # a full reconcile leaves the index agreeing with the disk: an interrupted run is done
                store.meta.set_meta(status="indexed", error="", last_indexed_at=str(time.time()))

    def _drop_recreated(self) -> None:
        """Taking the lock recreated a cleared codebase's folder (for the lock file): remove it again."""
        lock = self.store.folder / "write.lock"
        self.store.lock.release()
        with contextlib.suppress(OSError):
            lock.unlink()
            self.store.folder.rmdir()

    @property
    def unsaved(self) -> bool:
        """Updates changed the index since its vector index was last saved durably."""
        with self._unsaved_lock:
            return self._unsaved

    def _set_unsaved(self, value: bool) -> None:
        with self._unsaved_lock:
            self._unsaved = value

    def flush(self, lock_timeout: float = 5.0) -> bool:
        """Durably save a vector index that updates left unsaved; False if busy (its next writer
        saves it) or nothing was unsaved."""
        if not self.unsaved:
            return False
        try:
            self.store.lock.acquire(timeout=lock_timeout)
        except IndexBusyError as exc:
            log.info("not saving %s now: %s", self.store.folder, exc)
            return False
        try:
            model_id = self.store.model_id
            if model_id and self.store.folder.exists():
                self.store.repair(model_id, durable=True)  # repairs what a foreign writer left, saves
            self._set_unsaved(False)
            return True
        finally:
            self.store.lock.release()

    # -- queries ----------------------------------------------------------------------------------
    def query_embedder(self) -> Embedder:
        """Queries must be embedded by the model (and backend) that built the index."""
        default = self._embedder(None)
        model_id = self.store.model_id
        return self._embedder(model_id) if model_id and model_id != default.model_id else default

    def embed_query(self, query: str) -> np.ndarray:
        """The query's vector from the index's model, through that model's query adapter if it
        has one and ``query_adapter`` is on (chunk vectors never change with it)."""
        embedder = self.query_embedder()
        vec = embedder.embed_query(query)
        if self.config.query_adapter:
            adapter = adapter_for(embedder.model_name)
            if adapter is not None:
                return adapter.apply(vec)
        return vec

    def line_source(self) -> Callable[[str, int], str]:
        """Exact text of any indexed line, from the stored chunks (for gaps between merged hits)."""
        return _line_source(self.store)

    def status(self) -> CodebaseStatus:
        """The status record, from the store (any process's runs and watchers)."""
        return _status(self.store)

    # -- watcher presence (see index/truth/presence.py) -------------------------------------------
    def record_watcher(self, entry: dict) -> None:
        """This process's watcher state, for ``status`` in any process."""
        pid = os.getpid()
        entry = entry | {"pid": pid, "heartbeat": time.time()}
        self.store.meta.set_meta(**{f"{presence.META_PREFIX}{pid}": json.dumps(entry)})

    def clear_watchers(self) -> None:
        """Remove this process's watcher entry, and entries of processes that are gone."""
        meta = self.store.meta.get_all_meta()
        mine = f"{presence.META_PREFIX}{os.getpid()}"
        live = {f"{presence.META_PREFIX}{e['pid']}" for e in presence.live_watchers(meta)} - {mine}
        dead = [k for k in meta if k.startswith(presence.META_PREFIX) and k not in live]
        if dead:
            with self.store.meta.transaction() as con:
                con.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in dead])

    def close(self) -> None:
        self.store.close()


def _rescope(root: Path, settings: ChunkSettings, indexed: dict, model_id: str | None) -> bool:
    """True if which files belong to the index changed since the last run (a full scan applies
    it); NeedsFullIndex if the first run never completed, or the chunking itself changed."""
    if not model_id or not indexed:
        raise NeedsFullIndex(
            f"{root}: its first index run has not completed: run `claude-context index {root}`"
        )
    if indexed == settings.to_dict():
        return False
    if keys := settings.rechunk_keys(indexed):
        raise NeedsFullIndex(
            f"{root}: {', '.join(keys)} changed: run `claude-context index {root}` to re-chunk every file"
        )
    return True


def _update_settings(settings: ChunkSettings, indexed: dict) -> tuple[ChunkSettings, dict]:
    """An update's settings (and the recorded ones, passed through): a newer chunker (an upgrade)
    chunks the files an update touches, and the next full run re-chunks the rest, so an update
    keeps the recorded chunker version (and never waits for that run)."""
    if indexed:
        settings = dataclasses.replace(settings, chunker=indexed.get("chunker", 1))
    return settings, indexed


def _record_scope(store: CodebaseStore, settings: ChunkSettings, firm: frozenset[str]) -> None:
    """Record the settings an update applied (a project file's new scope)."""
    recorded = json.dumps(settings.to_dict())
    if store.meta.get_meta("indexed_settings") != recorded:
        store.meta.set_meta(settings=recorded, indexed_settings=recorded, settings_firm=firm_json(firm))


def _record_failure(store: CodebaseStore, exc: BaseException) -> StorageError | None:
    """Record the failed run's status (if SQLite cannot take it, disk full, a file beside it does);
    returns the storage fault to raise instead of ``exc``, if it is one."""
    mapped = classify(exc, store.folder) if isinstance(exc, Exception) else None
    if not store.folder.exists():
        return None
    if isinstance(exc, IndexCancelled):
        error = "indexing was cancelled"
    else:
        error = str(mapped) if mapped is not None else f"{type(exc).__name__}: {exc}"
    try:
        store.meta.set_meta(status="failed", error=error)
    except Exception as write_error:
        log.info("could not record the failure of %s in its index: %s", store.folder, write_error)
        health.record_error(store.folder, error)
    return mapped if isinstance(mapped, StorageError) and mapped is not exc else None


def _choose_backend(
    store: CodebaseStore, config: Config, root: Path, settings: ChunkSettings, asked: BackendChoice
) -> None:
    """Pick the backend options for this run; a change rebuilds derived data in ``repair``.
    What the user asked for is remembered, so ``auto`` keeps re-deciding as the codebase grows."""
    old = store.index_options()
    have = bool(store.meta.get_meta("index_options"))
    expected = _expected_chunks(store, config, root, settings, asked.quantization)
    options = IndexOptions(
        store=asked.store,
        quantization=resolve_quantization(asked.quantization, expected, store=asked.store),
        milvus_uri=config.milvus_uri or old.milvus_uri,
        milvus_token=config.milvus_token,
    )
    store.meta.set_meta(quantization_requested=asked.quantization)
    if store.set_index_options(options) and have:
        log.info("index options changed to %s: rebuilding derived index from stored embeddings", options)


def _expected_chunks(
    store: CodebaseStore, config: Config, root: Path, settings: ChunkSettings, requested: str
) -> int:
    """Chunks the codebase has, or for a first index an estimate from its size (a stat walk),
    so ``auto`` picks the right vector index before building one."""
    have = store.meta.chunk_count()
    if requested != "auto" or have:
        return have
    total = sum(e.size for e in discover(root, settings.discovery(config)))
    return total // BYTES_PER_CHUNK


class _ProgressTracker:
    """Turns pipeline counters into ``IndexProgress``: the rate over the last 30 s, an ETA, a
    write to the store at most twice a second (other processes show it), the caller's callback."""

    def __init__(
        self,
        store: CodebaseStore,
        pipeline: IndexPipeline,
        progress: ProgressFn | None,
        total: int,
        t0: float,
    ) -> None:
        self.store, self.pipeline, self.progress, self.t0 = store, pipeline, progress, t0
        self.prog = IndexProgress("indexing", files_total=total)
        self.last_write = 0.0
        self.history: deque[tuple[float, int]] = deque(maxlen=120)

    def phase(self, name: str) -> None:
        self.prog.phase = name
        self(True)

    def __call__(self, force_write: bool = False) -> None:
        c, prog = self.pipeline.snapshot(), self.prog
        now = time.perf_counter()
        if prog.phase != "saving":
            prog.phase = "embedding" if c.producer_done else "indexing"
        prog.elapsed_s = round(now - self.t0, 2)
        prog.files_done, prog.files_staged = c.files_done, c.files_staged
        prog.chunks_done, prog.chunks_staged = c.chunks_done, c.chunks_staged
        prog.chunks_embedded, prog.chunks_pending = c.chunks_embedded, c.chunks_pending
        history = self.history
        history.append((now, c.chunks_done))
        while len(history) > 2 and now - history[0][0] > 30.0:
            history.popleft()
        span = now - history[0][0]
        prog.rate = round((c.chunks_done - history[0][1]) / span, 1) if span > 1.0 else 0.0
        per_file = c.chunks_staged / c.files_staged if c.files_staged else 0.0
        remaining = c.chunks_pending + max(0, prog.files_total - c.files_staged) * per_file
        prog.eta_s = round(remaining / prog.rate, 1) if prog.rate > 0 else None
        if not remaining:
            prog.eta_s = 0.0
        if force_write or now - self.last_write > 0.5:
            self.last_write = now
            self.store.meta.set_meta(progress=json.dumps(asdict(prog)))
        if self.progress:
            self.progress(prog)


def _line_source(store: CodebaseStore) -> Callable[[str, int], str]:
    cache: dict[str, dict[int, str]] = {}

    def line(path: str, n: int) -> str:
        if path not in cache:
            lines: dict[int, str] = {}
            for sc in store.meta.chunks_for_path(path):
                for i, text in enumerate(sc.chunk.content.split("\n")):
                    lines[sc.chunk.start_line + i] = text
            cache[path] = lines
        return cache[path].get(n, "")  # a line in no chunk is blank

    return line


def _status(store: CodebaseStore) -> CodebaseStatus:
    meta = store.meta.get_all_meta()
    status, error = meta.get("status", "not_indexed"), meta.get("error", "")
    status, error = _unfinished(store, meta, status, error)
    prog = json.loads(meta.get("progress", "{}") or "{}")
    files, skipped = store.meta.file_count()
    index = store.chunk_index()
    st = CodebaseStatus(
        root=meta.get("root", ""),
        status=status,
        files=files,
        chunks=store.meta.chunk_count(),
        skipped_files=skipped,
        files_done=int(prog.get("files_done", 0)),
        files_total=int(prog.get("files_total", 0)),
        chunks_done=int(prog.get("chunks_done", 0)),
        started_at=_float(meta.get("started_at")),
        last_indexed_at=_float(meta.get("last_indexed_at")),
        error=error if status == "failed" else "",
        model=(meta.get("model_id") or "").split("|", 1)[0],
        index=index.stats() if index is not None else {},
        size_bytes=_folder_bytes(store.folder),
        languages=store.meta.language_counts(),
    )
    st.backend = parse_model_id(meta["model_id"])[1] if meta.get("model_id") else ""
    st.chunks, st.chunks_pending = store.meta.coverage_counts()
    st.semantic_coverage = round(1.0 - st.chunks_pending / st.chunks, 4) if st.chunks else 1.0
    if status == "indexing" and prog.get("eta_s") is not None:
        st.eta_s = float(prog["eta_s"])
    if status == "indexed":
        st.percent = 100.0
    elif st.files_total:
        st.percent = round(100.0 * st.files_done / st.files_total, 1)
    elapsed = float(prog.get("elapsed_s", 0) or 0)
    st.chunks_per_s = round(st.chunks_done / elapsed, 1) if elapsed > 0 else 0.0
    st.watcher, st.watcher_message, st.watcher_pid = presence.watcher_summary(meta)
    changes = [t for t in (_float(meta.get("last_change_at")), st.last_indexed_at) if t]
    st.last_change_at = max(changes) if changes else None
    st.note = _chunker_note(meta)
    return st


def older_chunker(meta: dict[str, str]) -> int | None:
    """The chunker version the files were chunked by when older than this one (an upgrade)."""
    indexed = loads(meta.get("indexed_settings"))
    done = indexed.get("chunker", 1) if indexed else CHUNKER_VERSION  # unrecorded: version 1
    return done if isinstance(done, int) and done < CHUNKER_VERSION else None


def _chunker_note(meta: dict[str, str]) -> str:
    """Said while the files were chunked by an older chunker: updates (the watcher) chunk the files
    they touch the new way, the rest waits for a full run (a server starts it: ``mcp_server/run``)."""
    done = older_chunker(meta)
    if done is None:
        return ""
    return (
        f"chunked by an older chunker (version {done}, now {CHUNKER_VERSION}): the next index run "
        "re-chunks every file (vectors of unchanged chunk texts come from the cache)"
    )


def _unfinished(store: CodebaseStore, meta: dict[str, str], status: str, error: str) -> tuple[str, str]:
    """Never "indexed" (or "indexing" forever) when a run or a watcher update stopped half-way."""
    unrecorded = health.last_error(store.folder)  # a failure SQLite could not take (disk full)
    if unrecorded and status != "failed":
        return "failed", unrecorded
    if status not in ("indexing", "indexed") or store.lock.is_locked():
        return status, error  # failed or never indexed; or a writer is at work right now
    if status == "indexing":  # the process that was indexing is gone: say so
        why = "the indexing process stopped"
        if disk_nearly_full(store.folder):
            why = "the disk holding the index is full"
        return "failed", error or f"indexing was interrupted ({why}); run index again to finish it"
    pending, applying = store.meta.pending_count(), meta.get("applying", "")
    if pending or applying:
        what = f"{pending} chunks wait for their vectors" if pending else f"{applying} changed files"
        return "failed", (
            f"an update was interrupted: {what} are not in the index yet; run index again (or let the "
            "watcher) to finish it"
        )
    return status, error


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, f)).st_size
    return total
