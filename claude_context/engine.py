"""The one engine API that both the CLI and the MCP server are thin shells over.

Data flows one way: discover files -> chunk -> embed (cached by content hash) -> store -> search.
State (status, progress, errors) lives in each codebase's SQLite, never only in this process, so
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from claude_context.config import Config
from claude_context.discovery import Skipped, discover, discovery_options
from claude_context.embedding import Embedder, EmbeddingCache, parse_model_id
from claude_context.index.base import IndexBusyError
from claude_context.index.factory import IndexOptions, open_chunk_index, resolve_quantization
from claude_context.index.metadata import FileState
from claude_context.index.store import CodebaseStore, FileUpdate, codebase_folder
from claude_context.models import FileEntry, SearchFilter
from claude_context.pipeline import Cancelled as PipelineCancelled
from claude_context.pipeline import IndexPipeline, prepare_file
from claude_context.query_adapter import adapter_for
from claude_context.ranking import RankSettings, fuse, keyword_weight
from claude_context.results import SearchResponse, shape_results
from claude_context.scope import resolve_scope

if TYPE_CHECKING:
    import numpy as np

    from claude_context.sync import UpdateReport

log = logging.getLogger(__name__)


BYTES_PER_CHUNK = 760  # measured mean on the transformers corpus (53 MB -> 69.6k chunks)


class UserError(Exception):
    """A problem the user can fix (bad path, not indexed, bad argument): shown as one line."""


class NotIndexedError(UserError):
    pass


class IndexCancelled(Exception):
    pass


@dataclass(slots=True)
class IndexProgress:
    phase: str  # scanning | indexing (chunking ahead) | embedding (vectors fill in) | saving | done
    files_done: int = 0  # files fully indexed: keywords and vectors
    files_total: int = 0
    chunks_done: int = 0  # chunks with their vectors
    chunks_embedded: int = 0  # of which the model ran on (cache misses)
    elapsed_s: float = 0.0
    files_staged: int = 0  # files keyword-searchable already (their vectors may be pending)
    chunks_staged: int = 0
    chunks_pending: int = 0  # staged chunks still waiting for the model
    rate: float = 0.0  # recent chunks/s (vectors filled), what the ETA is based on
    eta_s: float | None = None  # seconds until every chunk has its vector (None: not known yet)

    @property
    def percent(self) -> float:
        if self.phase == "done":
            return 100.0
        return round(100.0 * self.files_done / self.files_total, 1) if self.files_total else 0.0

    @property
    def chunks_per_s(self) -> float:
        return round(self.chunks_done / self.elapsed_s, 1) if self.elapsed_s > 0 else 0.0


ProgressFn = Callable[[IndexProgress], None]


@dataclass(slots=True)
class IndexReport:
    root: str
    files_total: int = 0  # files indexed after this run
    files_changed: int = 0  # files (re)chunked in this run
    files_deleted: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    chunks_total: int = 0
    chunks_written: int = 0
    chunks_embedded: int = 0  # chunks the model actually ran on (cache misses)
    seconds: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)
    model_id: str = ""  # model|backend[|quantization] the vectors came from
    model_seconds: float = 0.0  # time spent inside the model (load excluded)
    note: str = ""  # something the user should know (e.g. a backend switch re-embedded everything)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class CodebaseStatus:
    root: str
    status: str  # not_indexed | indexing | indexed | failed
    files: int = 0
    chunks: int = 0
    skipped_files: int = 0
    percent: float = 0.0
    files_done: int = 0
    files_total: int = 0
    chunks_done: int = 0
    chunks_per_s: float = 0.0
    started_at: float | None = None
    last_indexed_at: float | None = None
    error: str = ""
    model: str = ""
    index: dict[str, object] = field(default_factory=dict)
    size_bytes: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    backend: str = ""  # embedding backend of the index (torch, onnx, onnx-int8)
    chunks_pending: int = 0  # chunks keyword-searchable but not yet embedded
    semantic_coverage: float = 1.0  # share of chunks that have their vector
    eta_s: float | None = None  # while indexing: seconds until every chunk has its vector
    # freshness (claude_context/watcher.py): the live watcher of any process, and the last change
    watcher: str = "off"  # off | starting | watching | polling | error
    watcher_message: str = ""
    watcher_pid: int | None = None
    last_change_at: float | None = None  # when an update or index run last changed the index

    def to_dict(self) -> dict:
        return asdict(self)


def _normalize_exts(exts: Iterable[str]) -> list[str]:
    return ["." + e.lower().lstrip(".") for e in exts if e and e.strip(".")]


@dataclass(slots=True)
class IndexJob:
    """A background indexing run of one codebase in this process."""

    root: Path
    thread: threading.Thread
    cancel: threading.Event
    started_at: float
    report: IndexReport | None = None
    error: BaseException | None = None
    progress: IndexProgress | None = None

    @property
    def running(self) -> bool:
        return self.thread.is_alive()


class Engine:
    """Index and search codebases under ``config.home``. Thread-safe for concurrent searches."""

    pipelined: bool = True  # False: the indexing stages run one batch at a time (tests compare)

    def __init__(self, config: Config) -> None:
        self.config = config
        config.codebases_dir.mkdir(parents=True, exist_ok=True)
        self.cache = EmbeddingCache(config.cache_path)
        self._embedders: dict[str, Embedder] = {}
        self._stores: dict[Path, CodebaseStore] = {}
        self._jobs: dict[Path, IndexJob] = {}
        self._lock = threading.RLock()

    # -- parts -----------------------------------------------------------------------------------
    def embedder(self, model: str | None = None) -> Embedder:
        """The embedder for ``model``: a name (on the configured backend) or an index's full model
        id (``name|backend[|quantization]``, so queries use the backend that built the index).
        Kept per engine, so a server keeps each model warm."""
        name = model or self.config.model
        with self._lock:
            if name not in self._embedders:
                c = self.config
                kwargs = dict(
                    device=c.device, batch_size=c.batch_size, threads=c.threads, models_dir=c.model_cache_dir
                )
                if "|" in name:
                    self._embedders[name] = Embedder.for_model_id(name, **kwargs)
                else:
                    self._embedders[name] = Embedder(name, backend=c.backend, **kwargs)
            return self._embedders[name]

    def warm_up(self) -> None:
        """Load the model now (the server does this in the background at start)."""
        self.embedder().embed_query("warm up")

    def _store_for_root(self, root: Path, create: bool) -> CodebaseStore | None:
        with self._lock:
            store = self._stores.get(root)
            if store is not None:
                if store.folder.exists():
                    return store
                store.close()
                del self._stores[root]
            folder = codebase_folder(self.config.codebases_dir, root)
            if not create and not (folder / "index.sqlite").exists():
                return None
            store = CodebaseStore(folder, self.cache, self._open_chunk_index)
            self._stores[root] = store
            return store

    def _open_chunk_index(self, folder: Path, dim: int, options: IndexOptions):
        if options.store == "milvus" and not options.milvus_token and self.config.milvus_token:
            options = dataclasses.replace(options, milvus_token=self.config.milvus_token)
        return open_chunk_index(
            folder,
            dim,
            options,
            keyword_expansion=self.config.keyword_expansion,
            keyword_tokenizer=self.config.keyword_tokenizer,
            oversample=self.config.rerank_oversample,
        )

    def _indexed_roots(self) -> list[Path]:
        roots = []
        for folder in sorted(self.config.codebases_dir.glob("*/index.sqlite")):
            from claude_context.index.metadata import MetadataStore

            try:
                meta = MetadataStore(folder)
                root = meta.get_meta("root")
                meta.close()
            except Exception:  # an unreadable folder is not a codebase; list the rest
                continue
            if root:
                roots.append(Path(root))
        return roots

    def resolve(self, path: str | Path) -> tuple[CodebaseStore, str]:
        """The indexed codebase containing ``path`` and the subfolder within it ("" = root)."""
        target = _existing_dir(path, must_exist=False)
        store = self._store_for_root(target, create=False)
        if store is not None and store.root is not None:
            return store, ""
        best: Path | None = None
        for root in self._indexed_roots():
            inside = target == root or root in target.parents
            if inside and (best is None or len(root.parts) > len(best.parts)):
                best = root
        if best is None:
            raise NotIndexedError(f"{target} is not indexed yet: run `claude-context index {target}` first")
        store = self._store_for_root(best, create=False)
        assert store is not None
        return store, target.relative_to(best).as_posix()

    # -- indexing --------------------------------------------------------------------------------
    def index(
        self,
        path: str | Path,
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
        """Bring the index of ``path`` up to date with the disk (incremental unless ``force``)."""
        root = _existing_dir(path, must_exist=True)
        t0 = time.perf_counter()
        store = self._store_for_root(root, create=True)
        assert store is not None
        try:
            store.lock.acquire(timeout=lock_timeout)
        except IndexBusyError as exc:
            raise IndexBusyError(f"{root}: {exc}") from None
        try:
            settings = self._settings(store, splitter, ignore_patterns, extensions)
            store.meta.set_meta(
                root=str(root),
                status="indexing",
                error="",
                started_at=str(time.time()),
                pid=str(os.getpid()),
                settings=json.dumps(settings),
                progress=json.dumps(asdict(IndexProgress("scanning"))),
            )
            self._apply_index_options(store, root, settings, quantization, store_kind)
            report = self._index_locked(store, root, settings, force, progress, cancel, t0)
            store.meta.set_meta(
                status="indexed",
                last_indexed_at=str(time.time()),
                progress=json.dumps(
                    asdict(
                        IndexProgress(
                            "done",
                            report.files_changed,
                            report.files_changed,
                            report.chunks_written,
                            report.chunks_embedded,
                            report.seconds,
                        )
                    )
                ),
            )
            return report
        except IndexCancelled:
            store.meta.set_meta(status="failed", error="indexing was cancelled")
            raise
        except BaseException as exc:
            if store.folder.exists():
                store.meta.set_meta(status="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            store.lock.release()

    def start_index(self, path: str | Path, **kwargs) -> tuple[IndexJob, bool]:
        """Index in a background thread; returns (job, started). A running job is returned as is.

        Raises IndexBusyError at once if another process is indexing this codebase.
        """
        root = _existing_dir(path, must_exist=True)
        with self._lock:
            job = self._jobs.get(root)
            if job is not None and job.running:
                return job, False
            store = self._store_for_root(root, create=True)
            assert store is not None
            if store.lock.held:  # this process's file watcher is applying a change: wait for it
                kwargs.setdefault("lock_timeout", 60.0)
            elif store.lock.is_locked():
                raise IndexBusyError(f"{root}: index busy: another process is updating it")
            cancel = threading.Event()
            user_progress = kwargs.pop("progress", None)

            def run() -> None:
                def on_progress(p: IndexProgress) -> None:
                    job.progress = p
                    if user_progress:
                        user_progress(p)

                try:
                    job.report = self.index(root, cancel=cancel, progress=on_progress, **kwargs)
                except BaseException as exc:  # kept on the job and in the store's status
                    job.error = exc
                    log.warning("indexing %s failed: %s", root, exc)

            thread = threading.Thread(target=run, name=f"index:{root.name}", daemon=True)
            job = IndexJob(root=root, thread=thread, cancel=cancel, started_at=time.time())
            self._jobs[root] = job
            thread.start()
            return job, True

    def job(self, path: str | Path) -> IndexJob | None:
        try:
            root = _existing_dir(path, must_exist=False)
        except UserError:
            return None
        return self._jobs.get(root)

    def cancel_index(self, path: str | Path, timeout: float = 60.0) -> bool:
        """Stop this process's running job for ``path`` (if any) and wait for it; True if one ran."""
        job = self.job(path)
        if job is None or not job.running:
            return False
        job.cancel.set()
        job.thread.join(timeout)
        return True

    def update(
        self,
        path: str | Path,
        paths: Iterable[str] | None = None,
        *,
        lock_timeout: float = 0.0,
        durable: bool = False,
        cancel: threading.Event | None = None,
    ) -> UpdateReport:
        """Apply changes on disk to an indexed codebase, cheaply (watch mode, start-up reconcile).

        ``paths`` (relative to the root, or absolute; files or folders) limits the stat-level scan
        to them; None scans the whole tree. Nothing changed = no lock taken, nothing written. The
        vector index is saved to disk only with ``durable`` (else by ``flush``/``close``): SQLite
        and the embedding cache hold every change, so a crash loses nothing. Returns an
        ``UpdateReport``; raises IndexBusyError if another writer holds the lock past the timeout.
        """
        from claude_context.sync import update

        root = _existing_dir(path, must_exist=True)
        return update(self, root, paths, lock_timeout=lock_timeout, durable=durable, cancel=cancel)

    def flush(self, path: str | Path | None = None, lock_timeout: float = 5.0) -> int:
        """Durably save vector indexes that ``update`` left unsaved; returns how many were saved."""
        from claude_context.sync import flush

        root = _existing_dir(path, must_exist=False) if path is not None else None
        return flush(self, root, lock_timeout)

    def _apply_index_options(
        self,
        store: CodebaseStore,
        root: Path,
        settings: dict,
        quantization: str | None,
        store_kind: str | None,
    ) -> None:
        """Pick the backend options for this run; a change rebuilds derived data in ``sync``.

        What the user asked for is remembered, so ``auto`` keeps re-deciding as the codebase grows.
        """
        old = store.index_options()
        have = bool(store.meta.get_meta("index_options"))
        requested = (
            quantization
            or store.meta.get_meta("quantization_requested")
            or (old.quantization if have else self.config.quantization)
        )
        if requested not in {"none", "int8", "rabitq", "auto"}:
            raise UserError(f"quantization must be none, int8, rabitq or auto, not {requested!r}")
        kind = store_kind or (old.store if have else self.config.store)
        if kind not in {"local", "milvus"}:
            raise UserError(f"store must be local or milvus, not {kind!r}")
        options = IndexOptions(
            store=kind,
            quantization=resolve_quantization(
                requested, self._expected_chunks(store, root, settings, requested), store=kind
            ),
            milvus_uri=self.config.milvus_uri or old.milvus_uri,
            milvus_token=self.config.milvus_token,
        )
        store.meta.set_meta(quantization_requested=requested)
        if store.set_index_options(options) and have:
            log.info("index options changed to %s: rebuilding derived index from stored embeddings", options)

    def _expected_chunks(self, store: CodebaseStore, root: Path, settings: dict, requested: str) -> int:
        """Chunks the codebase has, or for a first index an estimate from its size (a stat walk),
        so ``auto`` picks the right vector index before building one."""
        have = store.meta.chunk_count()
        if requested != "auto" or have:
            return have
        options = discovery_options(self.config, settings)
        total = sum(e.size for e in discover(root, options))
        return total // BYTES_PER_CHUNK

    def _settings(
        self,
        store: CodebaseStore,
        splitter: str | None,
        ignore_patterns: list[str] | None,
        extensions: list[str] | None,
    ) -> dict:
        """Per-codebase settings: given values win, else what the last run used, else config."""
        old = json.loads(store.meta.get_meta("settings", "{}") or "{}")
        settings = {
            "splitter": splitter or old.get("splitter") or self.config.splitter,
            "ignore_patterns": ignore_patterns
            if ignore_patterns is not None
            else old.get("ignore_patterns", list(self.config.ignore_patterns)),
            "extensions": _normalize_exts(extensions)
            if extensions is not None
            else old.get("extensions", _normalize_exts(self.config.extensions)),
            "max_chunk_chars": self.config.max_chunk_chars,
            "module_chunk_chars": self.config.module_chunk_chars,
        }
        if settings["splitter"] not in {"ast", "text"}:
            raise UserError(f"splitter must be 'ast' or 'text', not {settings['splitter']!r}")
        return settings

    def _index_locked(
        self,
        store: CodebaseStore,
        root: Path,
        settings: dict,
        force: bool,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        t0: float,
    ) -> IndexReport:
        embedder = self.embedder()
        model_id = embedder.model_id  # known without loading the model: a no-op run never loads it
        report = IndexReport(root=str(root), model_id=model_id)
        old_settings = json.loads(store.meta.get_meta("indexed_settings", "{}") or "{}")
        if store.model_id not in (None, model_id):
            report.note = (
                f"embedding model changed ({store.model_id} -> {model_id}): re-embedding every chunk, "
                "so vectors of different models never mix (vectors cached for it before are reused)"
            )
            log.warning("%s: %s", root, report.note)
            store.reset_index()
            store.meta.set_meta(dim=str(embedder.dim))
        elif old_settings and old_settings != settings:
            force = True  # chunking settings changed: every file must be re-chunked
        store.meta.set_meta(model_id=model_id)
        if store.dim is None:  # known up front, so keywords are searchable before any vector exists
            store.meta.set_meta(dim=str(embedder.dim))
        store.sync(model_id, durable=True)  # repair after a crash, before comparing state

        options = discovery_options(self.config, settings)
        skipped: list[Skipped] = []
        entries = list(discover(root, options, skipped))
        states = store.meta.file_states()
        seen = {e.path for e in entries}
        deleted = [p for p in states if p not in seen]
        # a file without a state row is new, or was staged by a run that stopped before all its
        # vectors were in: either way it is (re)chunked, and the cache supplies what was embedded
        changed = [
            e
            for e in entries
            if force or (s := states.get(e.path)) is None or s.size != e.size or s.mtime_ns != e.mtime_ns
        ]
        report.files_unchanged = len(entries) - len(changed)
        report.files_deleted = len(deleted)

        pipeline = self.pipeline(store, embedder, settings, force, cancel)
        prog = IndexProgress("indexing", files_total=len(changed))
        last_report = 0.0
        history: deque[tuple[float, int]] = deque(maxlen=120)

        def tick(force_write: bool = False) -> None:
            nonlocal last_report
            c = pipeline.snapshot()
            now = time.perf_counter()
            prog.phase = "embedding" if c.producer_done else "indexing"
            prog.elapsed_s = round(now - t0, 2)
            prog.files_done, prog.files_staged = c.files_done, c.files_staged
            prog.chunks_done, prog.chunks_staged = c.chunks_done, c.chunks_staged
            prog.chunks_embedded, prog.chunks_pending = c.chunks_embedded, c.chunks_pending
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
            if force_write or now - last_report > 0.5:
                last_report = now
                store.meta.set_meta(progress=json.dumps(asdict(prog)))
            if progress:
                progress(prog)

        tick(True)
        try:
            pipeline.run(changed, deleted, states, tick=tick)
        except PipelineCancelled:
            raise IndexCancelled() from None
        c = pipeline.snapshot()
        report.files_changed, report.chunks_written = c.files_changed, c.chunks_written
        report.chunks_embedded, report.model_seconds = c.chunks_embedded, round(c.model_seconds, 2)
        skipped.extend(pipeline.skipped)
        tick()
        prog.phase = "saving"
        tick(True)
        store.persist()
        store.meta.set_meta(indexed_settings=json.dumps(settings))

        report.files_total, report.files_skipped = store.meta.file_count()
        report.files_skipped += sum(1 for s in skipped if s.reason not in {"binary", "minified"})
        report.chunks_total = store.meta.chunk_count()
        report.skipped = [{"path": s.path, "reason": s.reason} for s in skipped]
        report.seconds = round(time.perf_counter() - t0, 3)
        return report

    def pipeline(
        self,
        store: CodebaseStore,
        embedder: Embedder,
        settings: dict,
        force: bool,
        cancel: threading.Event | None,
    ) -> IndexPipeline:
        """The indexing pipeline for one run over ``store`` (full index and watcher updates alike)."""
        return IndexPipeline(
            store,
            embedder,
            self.cache,
            settings=settings,
            force=force,
            max_file_bytes=self.config.max_file_bytes,
            cancel=cancel,
            concurrent=self.pipelined,
        )

    def _prepare(
        self, entry: FileEntry, settings: dict, old: FileState | None, force: bool
    ) -> FileUpdate | None:
        """Read and chunk one file (``pipeline.prepare_file``). None if it vanished since discovery."""
        return prepare_file(entry, settings, old, force, self.config.max_file_bytes)

    # -- search ----------------------------------------------------------------------------------
    def search(
        self,
        path: str | Path,
        query: str,
        *,
        limit: int = 10,
        mode: str | None = None,
        filters: SearchFilter | None = None,
        token_budget: int | None = None,
    ) -> SearchResponse:
        t0 = time.perf_counter()
        mode = mode or self.config.search_mode
        if mode not in {"hybrid", "semantic", "keyword"}:
            raise UserError(f"mode must be hybrid, semantic or keyword, not {mode!r}")
        if not query or not query.strip():
            raise UserError("query is empty")
        if limit < 1 or limit > 100:
            raise UserError("limit must be between 1 and 100")
        store, sub = self.resolve(path)
        filters = filters or SearchFilter()
        if sub:
            filters.subfolder = sub
        status = self._status_of(store)
        response = SearchResponse(root=str(store.root), query=query, mode=mode, subfolder=sub)
        response.partial = status.status == "indexing"
        response.semantic_coverage = status.semantic_coverage
        if status.semantic_coverage < 1.0 and mode != "keyword":
            response.note = (
                f"{status.semantic_coverage:.0%} of the index is semantic so far: keyword matches cover "
                "every indexed chunk, semantic ones only the chunks embedded yet (the rest fill in behind)"
            )
        index = store.chunk_index()
        if index is None:  # nothing embedded yet
            response.note = "the index is empty so far"
            return response
        model_id = store.model_id or self.embedder().model_id
        store.sync(model_id, durable=False)
        scope = resolve_scope(store.meta, filters)
        allowed_paths = scope
        if scope is not None and not scope:
            response.took_ms = round((time.perf_counter() - t0) * 1000, 2)
            response.note = "no indexed file matches the filters"
            return response
        k = max(limit * 5, self.config.candidates)
        settings = self._rank_settings()
        qvec = self._embed_query(store, query) if mode in {"hybrid", "semantic"} else None
        text = query if mode in {"hybrid", "keyword"} else None
        own = None
        if self.config.fusion == "score":  # each retriever searched in the backend, fused here
            own = index.search_rankings(text, qvec, k, allowed_paths, filters)
        rankings: list[tuple[str, list]] = list(own) if own is not None else []
        if own is None:
            native = index.search_hybrid(
                text,
                qvec,
                k,
                allowed_paths,
                filters,
                rrf_k=self.config.rrf_k,
                weights=(self.config.dense_weight, keyword_weight(query, settings)),
                fusion=self.config.fusion,
            )
            if native is not None:  # the backend searched (and for hybrid fused: "fused" scores) itself
                name = {"hybrid": "fused", "semantic": "dense", "keyword": "keyword"}[mode]
                rankings.append((name, native))
            else:
                allowed_ids = set(store.meta.chunk_ids_for_paths(scope)) if scope is not None else None
                if qvec is not None:
                    rankings.append(("dense", index.search_dense(qvec, k, allowed_ids)))
                if text is not None:
                    rankings.append(("keyword", index.search_keyword(query, k, allowed_paths)))
        rows = store.meta.get_chunks(list({h.id for _, hits in rankings for h in hits}))
        ranked = fuse(query, rankings, rows, settings)
        response.results, response.truncated = shape_results(
            ranked,
            limit,
            token_budget or self.config.token_budget,
            merge_gap=self.config.merge_gap if self.config.merge_gap >= 0 else None,
            top_merge_gap=self.config.top_merge_gap if self.config.top_merge_gap >= 0 else None,
            max_merged_chars=self.config.max_merged_chars,
            line_source=_line_source(store),
        )
        response.took_ms = round((time.perf_counter() - t0) * 1000, 2)
        return response

    def _rank_settings(self) -> RankSettings:
        c = self.config
        return RankSettings(
            fusion=c.fusion,
            rrf_k=c.rrf_k,
            dense_weight=c.dense_weight,
            keyword_weight=c.keyword_weight,
            code_query_boost=c.code_query_boost,
            symbol_boost=c.symbol_boost,
            doc_weight=c.doc_weight,
            module_weight=c.module_weight,
            test_weight=c.test_weight,
        )

    def _embed_query(self, store: CodebaseStore, query: str) -> np.ndarray:
        """The query's vector from the index's model, through that model's query adapter if it
        has one and ``query_adapter`` is on (chunk vectors never change with it)."""
        embedder = self._query_embedder(store)
        vec = embedder.embed_query(query)
        if self.config.query_adapter:
            adapter = adapter_for(embedder.model_name)
            if adapter is not None:
                return adapter.apply(vec)
        return vec

    def _query_embedder(self, store: CodebaseStore) -> Embedder:
        """Queries must be embedded by the model that built the index."""
        model_id = store.model_id
        if model_id and model_id != self.embedder().model_id:
            return self.embedder(model_id)  # the full id: same model *and* backend as the index
        return self.embedder()

    def find_symbol(
        self, path: str | Path, name: str, kind: str | None = None, limit: int = 20
    ) -> list[dict]:
        if not name or not name.strip():
            raise UserError("symbol name is empty")
        store, sub = self.resolve(path)
        rows = store.meta.find_symbols(name.strip(), kind, limit * 4 if sub else limit)
        out = []
        for sc in rows:
            c = sc.chunk
            if sub and not c.path.startswith(sub.rstrip("/") + "/"):
                continue
            out.append(
                {
                    "path": c.path,
                    "start_line": c.start_line,
                    "end_line": c.end_line,
                    "language": c.language,
                    "symbol": c.symbol,
                    "kind": c.kind,
                    "signature": c.signature or c.content.split("\n", 1)[0].strip(),
                }
            )
        return out[:limit]

    # -- status ----------------------------------------------------------------------------------
    def status(self, path: str | Path) -> CodebaseStatus:
        try:
            store, _ = self.resolve(path)
        except NotIndexedError:
            return CodebaseStatus(root=str(_existing_dir(path, must_exist=False)), status="not_indexed")
        return self._status_of(store)

    def _status_of(self, store: CodebaseStore) -> CodebaseStatus:
        meta = store.meta.get_all_meta()
        status = meta.get("status", "not_indexed")
        error = meta.get("error", "")
        if status == "indexing" and not store.lock.is_locked():
            # the process that was indexing is gone: say so instead of "indexing" forever
            status, error = "failed", error or "indexing was interrupted (the indexing process stopped)"
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
        st.chunks_pending = store.meta.pending_count()
        st.semantic_coverage = round(1.0 - st.chunks_pending / st.chunks, 4) if st.chunks else 1.0
        if status == "indexing" and prog.get("eta_s") is not None:
            st.eta_s = float(prog["eta_s"])
        if status == "indexed":
            st.percent = 100.0
        elif st.files_total:
            st.percent = round(100.0 * st.files_done / st.files_total, 1)
        elapsed = float(prog.get("elapsed_s", 0) or 0)
        st.chunks_per_s = round(st.chunks_done / elapsed, 1) if elapsed > 0 else 0.0
        from claude_context.watcher import watcher_summary

        st.watcher, st.watcher_message, st.watcher_pid = watcher_summary(meta)
        changes = [t for t in (_float(meta.get("last_change_at")), st.last_indexed_at) if t]
        st.last_change_at = max(changes) if changes else None
        return st

    def list_codebases(self) -> list[CodebaseStatus]:
        out = []
        for root in self._indexed_roots():
            store = self._store_for_root(root, create=False)
            if store is not None:
                out.append(self._status_of(store))
        return out

    def clear(self, path: str | Path) -> str:
        """Remove a codebase's index (the shared embedding cache is kept: re-indexing is cheap)."""
        store, sub = self.resolve(path)
        if sub:
            raise UserError(f"{path} is inside the indexed codebase {store.root}: clear that root instead")
        root = store.root
        self.cancel_index(root)
        try:
            store.lock.acquire(timeout=5.0)
        except IndexBusyError as exc:
            raise IndexBusyError(f"{root}: {exc}; stop it first") from None
        with self._lock:
            self._stores.pop(Path(str(root)), None)
        store.clear()
        return str(root)

    def close(self) -> None:
        for job in list(self._jobs.values()):
            if job.running:
                job.cancel.set()
                job.thread.join(30)
        try:
            self.flush()  # vector indexes that watch-mode updates left unsaved
        except Exception as exc:  # a crash-equivalent: the next writer repairs from SQLite
            log.warning("could not save updated vector indexes: %s", exc)
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
            self.cache.close()


def _line_source(store: CodebaseStore):
    """Exact text of any indexed line, from the stored chunks (for gaps between merged hits)."""
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


def _existing_dir(path: str | Path, must_exist: bool) -> Path:
    if path is None or str(path).strip() == "":
        raise UserError("path is empty")
    p = Path(os.path.expanduser(str(path)))
    try:
        p = p.resolve()
    except (OSError, RuntimeError) as exc:
        raise UserError(f"cannot resolve path {path}: {exc}") from None
    if must_exist:
        if not p.exists():
            raise UserError(f"path does not exist: {p}")
        if not p.is_dir():
            raise UserError(f"path is not a directory: {p}")
    return p
