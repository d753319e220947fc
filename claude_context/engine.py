"""The one engine API that both the CLI and the MCP server are thin shells over.

The engine is a registry of ``Codebase`` objects (one per indexed root, opened on first use),
the background indexing jobs of this process, and the search entry point. Indexing, change
application and status live in ``codebase.py``; ranking and result shaping in ``search/``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from claude_context import limits, project
from claude_context.codebase import Codebase
from claude_context.config import (
    Config,
    Quantization,
    Splitter,
    StoreKind,
    choice,
)
from claude_context.discovery import refuse_root
from claude_context.embedding import Embedder, EmbeddingCache, static
from claude_context.errors import IndexBusyError, IndexDamagedError, NotIndexedError, UserError
from claude_context.index.registry import IndexOptions, open_chunk_index
from claude_context.index.truth import health
from claude_context.index.truth.metadata import MetadataStore
from claude_context.index.truth.store import CodebaseStore, codebase_folder
from claude_context.records import SearchFilter
from claude_context.recovery import (
    clear_damaged,
    damaged_sentence,
    damaged_status,
    guarded,
    open_for_index,
    status_or_damage,
    unindexed_status,
)
from claude_context.reports import CodebaseStatus, IndexProgress, IndexReport, UpdateReport
from claude_context.search.lookup import LookupResponse, find_references, find_symbols
from claude_context.search.ranking import RankSettings
from claude_context.search.results import SearchResponse
from claude_context.searching import UNBOUNDED_TOKENS, run_search

log = logging.getLogger(__name__)

START_WAIT_S = 5.0  # how long ``start_index`` waits for a new job to show in the store
MAX_LOOKUP = 200  # definitions / references per page
MAX_LOOKUP_OFFSET = 10_000


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
        self._codebases: dict[Path, Codebase] = {}
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

    def codebase(self, root: Path, create: bool = False) -> Codebase | None:
        """The codebase of exactly ``root`` (an absolute, resolved path); None if it has no index
        and ``create`` is false."""
        with self._lock:
            cb = self._codebases.get(root)
            if cb is not None:
                if cb.folder.exists():
                    return cb
                cb.close()
                del self._codebases[root]
            folder = codebase_folder(self.config.codebases_dir, root)
            if not create and not (folder / "index.sqlite").exists():
                return None
            store = CodebaseStore(folder, self.cache, self._open_chunk_index)
            cb = self._codebases[root] = Codebase(root, store, lambda: self.config, self.embedder)
            return cb

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

    def indexed_roots(self) -> list[Path]:
        """Roots of every codebase with an index under this home."""
        roots = []
        for folder in sorted(self.config.codebases_dir.glob("*/index.sqlite")):
            try:
                meta = MetadataStore(folder)
                root = meta.get_meta("root")
                meta.close()
            except Exception:  # unreadable: listed (as damaged) if its root is known
                root = health.recorded_root(folder.parent)
            if not root and health.last_error(folder.parent):  # its first run could not start
                root = health.recorded_root(folder.parent)
            if root:
                roots.append(Path(root))
        return roots

    def resolve(self, path: str | Path) -> tuple[Codebase, str]:
        """The indexed codebase containing ``path`` and the subfolder within it ("" = root)."""
        target = existing_dir(path, must_exist=False)
        try:
            cb = self.codebase(target)
        except IndexDamagedError as exc:
            raise IndexDamagedError(damaged_sentence(target, str(exc))) from exc
        if cb is not None and cb.root is not None:
            return cb, ""
        best: Path | None = None
        for root in self.indexed_roots():
            inside = target == root or root in target.parents
            if inside and (best is None or len(root.parts) > len(best.parts)):
                best = root
        if best is None:
            raise NotIndexedError(f"{target} is not indexed yet: run `claude-context index {target}` first")
        cb = self.codebase(best)
        assert cb is not None
        return cb, target.relative_to(best).as_posix()

    # -- indexing --------------------------------------------------------------------------------
    def index(self, path: str | Path, **kwargs) -> IndexReport:
        """Bring the index of ``path`` up to date with the disk (incremental unless ``force``);
        keyword arguments: ``Codebase.index``."""
        root = existing_dir(path, must_exist=True)
        _check_index_args(root, kwargs)
        project.layered(self.config, project.read_project(root))  # a bad project file fails here
        cb, note = open_for_index(self, root, kwargs.get("lock_timeout", 0.0))
        report = cb.index(root, **kwargs)
        health.passed(cb.folder)
        report.note = "; ".join(n for n in (note, report.note) if n)
        return report

    def forget(self, root: Path) -> None:
        """Close and drop this process's handle on ``root``'s codebase (its files get replaced)."""
        with self._lock:
            cb = self._codebases.pop(root, None)
        if cb is not None:
            cb.close()

    def start_index(self, path: str | Path, **kwargs) -> tuple[IndexJob, bool]:
        """Index in a background thread; returns (job, started). A running job is returned as is.
        A new job is returned once the store shows it (so every poller sees "indexing"), or after
        ``START_WAIT_S``. Raises IndexBusyError at once if another process is indexing it."""
        root = existing_dir(path, must_exist=True)
        _check_index_args(root, kwargs)
        project.layered(self.config, project.read_project(root))  # a bad project file fails at once
        with self._lock:
            job = self._jobs.get(root)
            if job is not None and job.running:
                return job, False
            cb, note = open_for_index(self, root, 0.0)
            if cb.store.lock.held:  # this process's file watcher is applying a change: wait for it
                kwargs.setdefault("lock_timeout", 60.0)
            elif cb.store.lock.is_locked():
                raise IndexBusyError(f"{root}: index busy: another process is updating it")
            job = self._jobs[root] = _start_job(root, cb, kwargs, note)
        deadline = time.monotonic() + START_WAIT_S
        while job.running and time.monotonic() < deadline:
            if cb.store.meta.get_meta("status") == "indexing":
                break
            time.sleep(0.02)
        return job, True

    def job(self, path: str | Path) -> IndexJob | None:
        try:
            root = existing_dir(path, must_exist=False)
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
        root = existing_dir(path, must_exist=True)
        cb = self.codebase(root)
        if cb is None or cb.root is None:
            raise NotIndexedError(f"{root} is not indexed yet: run `claude-context index {root}` first")
        return cb.apply_changes(root, paths, lock_timeout=lock_timeout, durable=durable, cancel=cancel)

    def flush(self, path: str | Path | None = None, lock_timeout: float = 5.0) -> int:
        """Durably save vector indexes that ``update`` left unsaved; returns how many were saved."""
        root = existing_dir(path, must_exist=False) if path is not None else None
        with self._lock:
            codebases = list(self._codebases.values())
        return sum(cb.flush(lock_timeout) for cb in codebases if root is None or cb.root == root)

    # -- search ----------------------------------------------------------------------------------
    @guarded
    def search(
        self,
        path: str | Path | Sequence[str | Path] | None,
        query: str,
        *,
        limit: int = 10,
        mode: str | None = None,
        filters: SearchFilter | None = None,
        token_budget: int | None = None,
        offset: int = 0,
    ) -> SearchResponse:
        """One page of results for ``query``: ``path`` is a codebase (or a folder inside one), a list
        of them, or None for every indexed codebase; several are ranked as one (``search/multi.py``)
        and each result names its root. ``offset`` skips that many results (pagination)."""
        _check_search_args(query, filters)
        return run_search(
            self,
            path,
            query,
            limit=limit,
            mode=mode,
            filters=filters,
            token_budget=token_budget,
            offset=offset,
        )

    def rank_settings(self) -> RankSettings:
        """The ranking knobs of the config (the fields ``RankSettings`` and ``Config`` share)."""
        names = {f.name for f in dataclasses.fields(RankSettings)}
        return RankSettings(**{n: getattr(self.config, n) for n in names})

    def find_symbol(
        self, path: str | Path, name: str, kind: str | None = None, limit: int = 20
    ) -> list[dict]:
        """Definitions named ``name`` (exact, then by prefix) as plain dicts (``symbols`` pages them)."""
        found = self.symbols(path, name, kind, limit=limit, token_budget=UNBOUNDED_TOKENS)
        return [asdict(h) for h in found.results]

    @guarded
    def symbols(
        self,
        path: str | Path,
        name: str,
        kind: str | None = None,
        *,
        limit: int = 20,
        offset: int = 0,
        token_budget: int | None = None,
    ) -> LookupResponse:
        """One page of the definitions named ``name`` in the codebase of ``path`` (or its subfolder)."""
        name = _lookup_args(name, limit, offset)
        cb, sub = self.resolve(path)
        budget = token_budget or self.config.token_budget
        return find_symbols(cb.store.meta, str(cb.root), name, kind or None, sub, limit, offset, budget)

    @guarded
    def references(
        self,
        path: str | Path,
        name: str,
        *,
        limit: int = 50,
        offset: int = 0,
        token_budget: int | None = None,
    ) -> LookupResponse:
        """One page of where ``name`` is defined (first) and used (call sites, imports, type uses,
        arguments), each with path, line and the line's text."""
        name = _lookup_args(name, limit, offset)
        cb, sub = self.resolve(path)
        budget = token_budget or self.config.token_budget
        meta = cb.store.meta
        return find_references(meta, str(cb.root), name, sub, limit, offset, budget, cb.line_source())

    # -- status ----------------------------------------------------------------------------------
    def status(self, path: str | Path) -> CodebaseStatus:
        try:
            cb, _ = self.resolve(path)
        except NotIndexedError:
            return unindexed_status(self, existing_dir(path, must_exist=False))
        except IndexDamagedError as exc:
            root = str(existing_dir(path, must_exist=False))
            return CodebaseStatus(root=root, status="failed", error=str(exc))
        return self.status_of(cb)

    def status_of(self, cb: Codebase) -> CodebaseStatus:
        """The store's status, corrected by a job this process runs that the store does not show yet."""
        st = status_or_damage(cb)
        job = self._jobs.get(Path(st.root)) if st.root else None
        if job is not None and job.running and st.status != "indexing":
            st.status, st.error = "indexing", ""
            if job.progress is not None:
                st.files_done, st.files_total = job.progress.files_done, job.progress.files_total
                st.chunks_done, st.percent = job.progress.chunks_done, job.progress.percent
            else:
                st.files_done = st.files_total = st.chunks_done = 0
                st.percent = 0.0
        return st

    def list_codebases(self) -> list[CodebaseStatus]:
        out = []
        for root in self.indexed_roots():
            try:
                cb = self.codebase(root)
            except IndexDamagedError as exc:
                out.append(damaged_status(root, str(exc)))
                continue
            if cb is not None:
                out.append(self.status_of(cb))
        return out

    def clear(self, path: str | Path) -> str:
        """Remove a codebase's index (the shared embedding cache is kept: re-indexing is cheap)."""
        try:
            cb, sub = self.resolve(path)
        except IndexDamagedError:  # its database cannot be opened: remove the folder as it is
            return clear_damaged(self, existing_dir(path, must_exist=False))
        if sub:
            raise UserError(f"{path} is inside the indexed codebase {cb.root}: clear that root instead")
        root = cb.root
        self.cancel_index(root)
        try:
            cb.store.lock.acquire(timeout=5.0)
        except IndexBusyError as exc:
            raise IndexBusyError(f"{root}: {exc}; stop it first") from None
        with self._lock:
            self._codebases.pop(Path(str(root)), None)
        cb.store.clear()
        return str(root)

    def close(self, timeout: float = 30.0) -> bool:
        """Cancel jobs, wait up to ``timeout`` s for them, save and close; False if a job still runs
        (e.g. waiting for the model): it dies with the process, resumed next run as after a crash."""
        busy = _stop_jobs(list(self._jobs.values()), timeout)
        with self._lock:
            idle = [self._codebases.pop(root) for root in list(self._codebases) if root not in busy]
            _save_and_close(idle)
            if not busy:
                self.cache.close()
        return not busy


def _lookup_args(name: str, limit: int, offset: int) -> str:
    """The stripped name of a lookup, after checking its paging arguments."""
    if not name or not name.strip():
        raise UserError("symbol name is empty")
    limits.check_text(name, "symbol name", limits.MAX_NAME_CHARS)
    if not 1 <= limit <= MAX_LOOKUP:
        raise UserError(f"limit must be between 1 and {MAX_LOOKUP}, not {limit}")
    if not 0 <= offset <= MAX_LOOKUP_OFFSET:
        raise UserError(f"offset must be between 0 and {MAX_LOOKUP_OFFSET}, not {offset}")
    return name.strip()


def _start_job(root: Path, cb: Codebase, kwargs: dict, note: str = "") -> IndexJob:
    """Run ``cb.index`` in a background thread; its report, error and progress land on the job."""
    cancel = threading.Event()
    user_progress = kwargs.pop("progress", None)

    def run() -> None:
        def on_progress(p: IndexProgress) -> None:
            job.progress = p
            if user_progress:
                user_progress(p)

        try:
            job.report = cb.index(root, cancel=cancel, progress=on_progress, **kwargs)
            static.release(cb.store, cb.config)
            health.passed(cb.folder)
            job.report.note = "; ".join(n for n in (note, job.report.note) if n)
        except BaseException as exc:  # kept on the job and in the store's status
            job.error = exc
            log.warning("indexing %s failed: %s", root, exc)

    thread = threading.Thread(target=run, name=f"index:{root.name}", daemon=True)
    job = IndexJob(root=root, thread=thread, cancel=cancel, started_at=time.time())
    thread.start()
    return job


def _save_and_close(codebases: list[Codebase]) -> None:
    try:  # vector indexes that watch-mode updates left unsaved
        sum(cb.flush() for cb in codebases)
    except Exception as exc:  # a crash-equivalent: the next writer repairs from SQLite
        log.warning("could not save updated vector indexes: %s", exc)
    for cb in codebases:
        cb.close()


def _stop_jobs(jobs: list[IndexJob], timeout: float) -> set[Path]:
    """Cancel ``jobs`` and wait for them up to ``timeout`` s in all; the roots still running."""
    deadline = time.monotonic() + timeout
    for job in jobs:
        job.cancel.set()
    busy = set()
    for job in jobs:
        job.thread.join(max(0.0, deadline - time.monotonic()))
        if job.running:
            busy.add(job.root)
            log.warning("%s: indexing still stopping; leaving it to the next run", job.root)
    return busy


def _check_search_args(query: str, filters: SearchFilter | None) -> None:
    """Bounds on a query and its filters (searching.py checks emptiness, limit and offset)."""
    limits.check_text(query or "", "query", limits.MAX_QUERY_CHARS)
    if filters is not None:
        limits.check_globs(filters.include_globs, "path globs")
        limits.check_globs(filters.exclude_globs, "exclude globs")
        limits.check_list(filters.extensions, "extensions")
        limits.check_list(filters.languages, "languages")


def _check_index_args(root: Path, kwargs: dict) -> None:
    """The root and the typed settings an index call may give, checked before anything is created
    or started."""
    refuse_root(root)
    limits.check_list(kwargs.get("ignore_patterns"), "ignore patterns")
    limits.check_list(kwargs.get("extensions"), "extensions")
    for key, kind in (("splitter", Splitter), ("quantization", Quantization), ("store_kind", StoreKind)):
        if kwargs.get(key) is not None:
            choice(kind, kwargs[key], "store" if key == "store_kind" else key)


def existing_dir(path: str | Path, must_exist: bool) -> Path:
    """``path`` expanded and resolved; with ``must_exist`` it must be a folder."""
    if path is None or str(path).strip() == "":
        raise UserError("path is empty")
    p = Path(os.path.expanduser(limits.check_path(path)))
    try:
        p = p.resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise UserError(f"cannot resolve path {path}: {exc}") from None
    if must_exist:
        if not p.exists():
            raise UserError(f"path does not exist: {p}")
        if not p.is_dir():
            raise UserError(f"path is not a directory: {p}")
    return p
