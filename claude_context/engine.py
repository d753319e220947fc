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
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from claude_context.chunkers import chunk_file, detect_language
from claude_context.config import Config
from claude_context.discovery import (
    BinaryFileError,
    DiscoveryOptions,
    FileReadError,
    Skipped,
    discover,
    read_source,
)
from claude_context.embedding import Embedder, EmbeddingCache
from claude_context.index.base import IndexBusyError
from claude_context.index.factory import IndexOptions, open_chunk_index, resolve_quantization
from claude_context.index.fusion import rrf
from claude_context.index.metadata import FileState, StoredChunk
from claude_context.index.store import CodebaseStore, FileUpdate, codebase_folder
from claude_context.models import FileEntry, SearchFilter, sha
from claude_context.results import SearchResponse, shape_results
from claude_context.scope import resolve_scope

log = logging.getLogger(__name__)

BATCH_CHUNKS = 256  # chunks per embed + store transaction
BATCH_FILES = 200
PERSIST_EVERY_S = 60.0  # durable save of the vector index during long runs


class UserError(Exception):
    """A problem the user can fix (bad path, not indexed, bad argument): shown as one line."""


class NotIndexedError(UserError):
    pass


class IndexCancelled(Exception):
    pass


@dataclass(slots=True)
class IndexProgress:
    phase: str  # scanning | indexing | saving | done
    files_done: int = 0
    files_total: int = 0
    chunks_done: int = 0
    chunks_embedded: int = 0
    elapsed_s: float = 0.0

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
        name = model or self.config.model
        with self._lock:
            if name not in self._embedders:
                self._embedders[name] = Embedder(name, self.config.device, self.config.batch_size)
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
        return open_chunk_index(folder, dim, options)

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
            self._apply_index_options(store, quantization, store_kind)
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
            if store.lock.is_locked():
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

    def _apply_index_options(
        self, store: CodebaseStore, quantization: str | None, store_kind: str | None
    ) -> None:
        """Pick the backend options for this run; a change rebuilds derived data in ``sync``."""
        old = store.index_options()
        have = bool(store.meta.get_meta("index_options"))
        requested = quantization or (old.quantization if have else self.config.quantization)
        if requested not in {"none", "int8", "rabitq", "auto"}:
            raise UserError(f"quantization must be none, int8, rabitq or auto, not {requested!r}")
        kind = store_kind or (old.store if have else self.config.store)
        if kind not in {"local", "milvus"}:
            raise UserError(f"store must be local or milvus, not {kind!r}")
        options = IndexOptions(
            store=kind,
            quantization=resolve_quantization(requested, store.meta.chunk_count()),
            milvus_uri=self.config.milvus_uri or old.milvus_uri,
            milvus_token=self.config.milvus_token,
        )
        store.meta.set_meta(quantization_requested=requested)
        if store.set_index_options(options) and have:
            log.info("index options changed to %s: rebuilding derived index from stored embeddings", options)

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
        model_id = embedder.model_id
        old_settings = json.loads(store.meta.get_meta("indexed_settings", "{}") or "{}")
        if store.model_id not in (None, model_id):
            log.warning("embedding model changed (%s -> %s): re-embedding", store.model_id, model_id)
            store.reset_index()
        elif old_settings and old_settings != settings:
            force = True  # chunking settings changed: every file must be re-chunked
        store.meta.set_meta(model_id=model_id)
        store.sync(model_id, durable=True)  # repair after a crash, before comparing state

        report = IndexReport(root=str(root))
        skipped: list[Skipped] = []
        options = DiscoveryOptions(
            max_file_bytes=self.config.max_file_bytes,
            extra_ignore=list(settings["ignore_patterns"]),
            index_secrets=self.config.index_secrets,
            extra_extensions=list(settings["extensions"]),
        )
        entries = list(discover(root, options, skipped))
        states = store.meta.file_states()
        seen = {e.path for e in entries}
        deleted = [p for p in states if p not in seen]
        changed = [
            e
            for e in entries
            if force or (s := states.get(e.path)) is None or s.size != e.size or s.mtime_ns != e.mtime_ns
        ]
        report.files_unchanged = len(entries) - len(changed)
        report.files_deleted = len(deleted)
        if deleted:
            store.apply(deleted, [], {})

        prog = IndexProgress("indexing", files_total=len(changed))
        last_report = 0.0
        last_persist = time.perf_counter()

        def tick(force_write: bool = False) -> None:
            nonlocal last_report
            prog.elapsed_s = round(time.perf_counter() - t0, 2)
            now = time.perf_counter()
            if force_write or now - last_report > 0.5:
                last_report = now
                store.meta.set_meta(progress=json.dumps(asdict(prog)))
            if progress:
                progress(prog)

        tick(True)
        pending: list[FileUpdate] = []
        vanished: list[str] = []
        touched: list[FileState] = []
        pending_chunks = 0

        def flush() -> None:
            nonlocal pending, vanished, touched, pending_chunks, last_persist
            if cancel is not None and cancel.is_set():
                raise IndexCancelled()
            store.touch_files(touched)
            if pending or vanished:
                vectors, embedded = self._vectors_for(embedder, store, pending)
                store.apply(vanished, pending, vectors)
                report.chunks_embedded += embedded
                prog.chunks_embedded += embedded
            report.files_changed += len(pending)
            report.chunks_written += pending_chunks
            prog.chunks_done += pending_chunks
            prog.files_done += len(pending) + len(vanished) + len(touched)
            pending, vanished, touched, pending_chunks = [], [], [], 0
            if time.perf_counter() - last_persist > PERSIST_EVERY_S:
                store.persist()
                last_persist = time.perf_counter()
            tick()

        for entry in changed:
            if cancel is not None and cancel.is_set():
                raise IndexCancelled()
            old = states.get(entry.path)
            update = self._prepare(entry, settings, old, force)
            if update is None:  # vanished since discovery
                if old is not None:
                    vanished.append(entry.path)
                else:
                    prog.files_done += 1
            elif not update.content_changed:
                touched.append(update.state)
            else:
                pending.append(update)
                pending_chunks += len(update.chunks)
                if update.state.status != "ok":
                    skipped.append(Skipped(entry.path, update.state.reason))
            if pending_chunks >= BATCH_CHUNKS or len(pending) + len(touched) >= BATCH_FILES:
                flush()
        flush()
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

    def _prepare(
        self, entry: FileEntry, settings: dict, old: FileState | None, force: bool
    ) -> FileUpdate | None:
        """Read and chunk one file. None if it vanished since discovery."""
        try:
            text = read_source(entry.abs_path, self.config.max_file_bytes)
        except BinaryFileError as exc:
            return FileUpdate(FileState(entry.path, entry.size, entry.mtime_ns, "", "skipped", _reason(exc)))
        except FileReadError as exc:
            if not entry.abs_path.exists():
                return None
            return FileUpdate(FileState(entry.path, entry.size, entry.mtime_ns, "", "skipped", str(exc)))
        digest = sha(text)
        language = detect_language(entry.path) or "text"
        if old is not None and old.status == "ok" and old.hash == digest and not force:
            # content unchanged (e.g. touched): only the stat data moves, nothing is re-chunked
            state = FileState(entry.path, entry.size, entry.mtime_ns, digest, "ok", "", language, old.chunks)
            return FileUpdate(state, content_changed=False)
        chunks = chunk_file(
            entry.path, text, max_chars=int(settings["max_chunk_chars"]), splitter=settings["splitter"]
        )
        keys = [sha(c.embed_text()) for c in chunks]
        return FileUpdate(
            FileState(entry.path, entry.size, entry.mtime_ns, digest, "ok", "", language, len(chunks)),
            chunks,
            keys,
        )

    def _vectors_for(
        self, embedder: Embedder, store: CodebaseStore, updates: list[FileUpdate]
    ) -> tuple[dict[str, np.ndarray], int]:
        """Vectors for every key in the batch: from the cache, embedding only the misses."""
        texts: dict[str, str] = {}
        for u in updates:
            for c, key in zip(u.chunks, u.keys, strict=True):
                texts.setdefault(key, c.embed_text())
        if not texts:
            return {}, 0
        found = self.cache.get_many(embedder.model_id, texts)
        missing = [k for k in texts if k not in found]
        if missing:
            vecs = embedder.embed([texts[k] for k in missing])
            fresh = dict(zip(missing, vecs, strict=True))
            self.cache.put_many(embedder.model_id, fresh)
            found.update(fresh)
        if store.dim is None:
            store.meta.set_meta(dim=str(len(next(iter(found.values())))))
        return found, len(missing)

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
        index = store.chunk_index()
        if index is None:  # nothing embedded yet
            response.note = "the index is empty so far"
            return response
        model_id = store.model_id or self.embedder().model_id
        store.sync(model_id, durable=False)
        scope = resolve_scope(store.meta, filters)
        allowed_paths = scope
        allowed_ids = set(store.meta.chunk_ids_for_paths(scope)) if scope is not None else None
        if scope is not None and not scope:
            response.took_ms = round((time.perf_counter() - t0) * 1000, 2)
            response.note = "no indexed file matches the filters"
            return response
        k = max(limit * 5, 50)
        rankings, weights = [], []
        if mode in {"hybrid", "semantic"}:
            qvec = self._query_embedder(store).embed_query(query)
            rankings.append(index.search_dense(qvec, k, allowed_ids))
            weights.append(self.config.dense_weight)
        if mode in {"hybrid", "keyword"}:
            rankings.append(index.search_keyword(query, k, allowed_paths))
            weights.append(self.config.keyword_weight)
        fused = rrf(rankings, weights, k=self.config.rrf_k) if len(rankings) > 1 else rankings[0]
        rows = store.meta.get_chunks([h.id for h in fused[: k * 2]])
        ranked: list[tuple[StoredChunk, float]] = [(rows[h.id], h.score) for h in fused if h.id in rows]
        response.results, response.truncated = shape_results(
            ranked, limit, token_budget or self.config.token_budget
        )
        response.took_ms = round((time.perf_counter() - t0) * 1000, 2)
        return response

    def _query_embedder(self, store: CodebaseStore) -> Embedder:
        """Queries must be embedded by the model that built the index."""
        model_id = store.model_id
        if model_id and model_id != self.embedder().model_id:
            return self.embedder(model_id.split("|", 1)[0])
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
        if status == "indexed":
            st.percent = 100.0
        elif st.files_total:
            st.percent = round(100.0 * st.files_done / st.files_total, 1)
        elapsed = float(prog.get("elapsed_s", 0) or 0)
        st.chunks_per_s = round(st.chunks_done / elapsed, 1) if elapsed > 0 else 0.0
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
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
            self.cache.close()


def _reason(exc: Exception) -> str:
    text = str(exc).lower()
    return "minified" if "minified" in text else "binary"


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
