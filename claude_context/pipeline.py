"""The indexing pipeline: chunk ahead, embed behind, write in batches; the model never waits.

Three stages run at once (a worker process and three threads), joined by bounded queues:

1. **Chunk** (worker processes when many files changed, so the GIL never makes the chunker and the
   model take turns): read and tree-sitter-chunk each changed file, source first (``embed_rank``).
2. **Stage** (thread): per ~256 chunks, one SQLite transaction writes the rows and the keyword
   index takes them, so the whole tree is keyword-searchable within seconds. Chunks whose vectors
   are in the embedding cache get them at once; the rest are recorded as *pending* and queued.
   In a bulk run the workers leave out identifier uses (``refs``: about half their work and a
   third of staging's); once the whole tree is keyword-searchable they extract them, and the
   filler stores them. A file's state row waits for its refs as it waits for its vectors.
3. **Embed** (thread): windows of pending texts go to the model in one call each
   (sentence-transformers sorts a call's texts by length, so batches are token-length homogeneous).
4. **Fill** (thread): writes the vectors to the cache, then to the index (one transaction per
   window), and records each file's state once its last vector is in. A crash leaves files with
   pending vectors stateless, so the next run re-chunks them and embeds only what is missing.

``concurrent=False`` runs the same stages one batch at a time in the calling thread (the serial
reference the tests compare against).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from claude_context.discovery import Skipped
from claude_context.embedding import Embedder, EmbeddingCache, available_cores
from claude_context.embedding.static import StaticVectors
from claude_context.errors import IndexCancelled
from claude_context.index.truth.metadata import FileState
from claude_context.index.truth.store import CodebaseStore, FileUpdate
from claude_context.prepare import FileWork, RefsBatch, pool_for
from claude_context.records import FileEntry
from claude_context.search.ranking import is_test_path
from claude_context.settings import ChunkSettings

log = logging.getLogger(__name__)

BATCH_CHUNKS = 256  # chunks per staging transaction
BATCH_FILES = 200
EMBED_WINDOW = 256  # texts per model call (and per fill transaction)
MAX_AHEAD = 100_000  # staged chunks waiting for vectors: bounds the texts held in memory
PROCESS_MIN_FILES = 64  # fewer changed files are chunked in-thread (a worker costs ~1 s to start)
PERSIST_EVERY_S = 60.0  # durable save of the vector index during long runs
COMMIT_EVERY_S = 1.0  # keyword-index commits while staging (one per batch cost ~60% of staging)
COMMIT_SPACING = 0.5  # ... and at least this share of the staging time so far apart (a long run
# commits less often: each commit costs the staging thread ~0.1 s and tantivy a segment merge)
FILL_COMMIT_EVERY_S = 5.0  # commits while only vectors change (local vectors are live at once)
HEAD_START_S = 30.0  # the model waits at most this long for staging to finish before it embeds


# Files that answer an agent's first questions best get their vectors first (and are chunked
# first): source code, then documentation, then examples/benchmarks/vendored copies, then tests
# (ranking demotes tests anyway). Keyword staging of a whole tree takes seconds; the vectors take
# minutes, so this order decides which part of the tree is semantic early on.
_AUX_DIR = re.compile(
    r"(^|/)(examples?|samples?|demos?|benchmarks?|bench|vendor|third_party|fixtures?)/", re.IGNORECASE
)
_DOC_EXT = (".md", ".mdx", ".rst", ".txt", ".adoc")


def embed_rank(entry: FileEntry) -> int:
    """0 source, 1 docs, 2 examples and other auxiliary code, 3 tests (lower is embedded first)."""
    path = entry.path
    if is_test_path(path):
        return 3
    if _AUX_DIR.search(path):
        return 2
    return 1 if path.lower().endswith(_DOC_EXT) or path.startswith(("docs/", "doc/")) else 0


@dataclass(slots=True)
class PendingChunk:
    id: int
    key: str
    text: str
    path: str


@dataclass(slots=True)
class Counters:
    """Progress shared by the stages (guarded by ``IndexPipeline._lock``)."""

    files_done: int = 0  # complete: rows, keywords and vectors
    files_staged: int = 0  # keyword-searchable (vectors may be pending)
    chunks_done: int = 0
    chunks_staged: int = 0
    chunks_embedded: int = 0  # the model ran on these (cache misses)
    chunks_pending: int = 0  # staged, waiting for vectors
    files_changed: int = 0  # files (re)chunked
    chunks_written: int = 0
    model_seconds: float = 0.0  # time inside the model (for the bench's model-only comparison)
    embed_started: float | None = None
    producer_done: bool = False  # every changed file staged: the whole tree is keyword-searchable


_DONE = object()


class IndexPipeline(FileWork):
    """One indexing run's stages. Create, ``run``, read ``counters``."""

    def __init__(
        self,
        store: CodebaseStore,
        embedder: Embedder,
        cache: EmbeddingCache,
        *,
        settings: ChunkSettings,
        force: bool,
        max_file_bytes: int,
        cancel: threading.Event | None = None,
        concurrent: bool = True,
        chunk_workers: int | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.cache = cache
        self.model_id = embedder.model_id
        self.settings = settings
        self.force = force
        self.max_file_bytes = max_file_bytes
        self.cancel = cancel or threading.Event()
        self.concurrent = concurrent
        # One chunk worker per core (max 4): the model holds back while staging (``_head_start``).
        workers = chunk_workers if chunk_workers is not None else available_cores()
        self.chunk_workers = max(1, min(4, workers))
        self.counters = Counters()
        self.static: StaticVectors | None = None  # embedding/static.py: for chunks awaiting vectors
        self.skipped: list[Skipped] = []
        self._lock = threading.Lock()
        self._outstanding: dict[str, list] = {}  # path -> [vectors still missing, FileState]
        self._embed_q: queue.Queue = queue.Queue()
        self._write_q: queue.Queue = queue.Queue(maxsize=4)
        self._ahead = threading.Semaphore(MAX_AHEAD)
        self._stop = threading.Event()  # set on error or cancel: every stage winds down
        self._errors: list[BaseException] = []
        self._last_persist = time.perf_counter()
        self._last_commit = self._started = time.perf_counter()
        self._uncommitted = False
        self._last_fill_commit = time.perf_counter()

    def snapshot(self) -> Counters:
        """A consistent copy of the progress counters (for progress reports from another thread)."""
        with self._lock:
            return dataclasses.replace(self.counters)

    # -- driver ----------------------------------------------------------------------------------
    def run(
        self,
        changed: Sequence[FileEntry],
        deleted: Sequence[str],
        states: dict[str, FileState],
        tick: Callable[[], None] | None = None,
    ) -> None:
        """Index ``changed`` files and drop ``deleted`` ones; returns when every vector is in."""
        if deleted:
            self.store.apply(list(deleted), [], {})
        changed = sorted(changed, key=embed_rank)  # stable: discovery order within each rank
        if not self.concurrent:
            self._produce(changed, states)
            self._check()
            return
        threads = [
            threading.Thread(target=self._guard(self._produce), args=(changed, states), name="cc-stage"),
            threading.Thread(target=self._guard(self._embed_loop), name="cc-embed"),
            threading.Thread(target=self._guard(self._write_loop), name="cc-fill"),
        ]
        for t in threads:
            t.daemon = True
            t.start()
        try:
            while any(t.is_alive() for t in threads):
                if self.cancel.is_set():
                    self._stop.set()
                if self._stop.is_set():
                    break
                if tick:
                    tick()
                alive = next((t for t in threads if t.is_alive()), None)
                if alive is None:  # every stage finished while tick() ran
                    break
                alive.join(0.25)
        except BaseException:
            self._stop.set()
            raise
        finally:
            self._stop_and_join(threads)
        self._check()

    def _stop_and_join(self, threads: list[threading.Thread]) -> None:
        if self._errors or self.cancel.is_set():
            self._stop.set()
        for t in threads:
            while t.is_alive():
                with contextlib.suppress(queue.Full):
                    self._write_q.put_nowait(_DONE)  # wake a filler blocked on an empty queue
                self._embed_q.put(_DONE)
                t.join(0.2)

    def _check(self) -> None:
        if self._errors:
            raise self._errors[0]
        if self.cancel.is_set():
            raise IndexCancelled()

    def _guard(self, fn: Callable) -> Callable:
        def run(*args) -> None:
            try:
                fn(*args)
            except IndexCancelled:
                self._stop.set()
            except BaseException as exc:
                self._errors.append(exc)
                self._stop.set()
            finally:
                # SQLite connections are per thread: close this thread's, or every run would leak
                # them (a server indexes many times) and leave the WAL unmerged.
                self.cache.close()
                self.store.meta.close()

        return run

    def _halt(self) -> None:
        if self.cancel.is_set():
            self._stop.set()
            raise IndexCancelled()
        if self._stop.is_set():
            raise IndexCancelled()

    # -- stage 1+2: chunk and stage ---------------------------------------------------------------
    def _produce(self, changed: Sequence[FileEntry], states: dict[str, FileState]) -> None:
        deferred: list[tuple[FileEntry, str, str]] = []  # staged without references
        bulk = self.concurrent and len(changed) >= PROCESS_MIN_FILES
        try:
            with pool_for(bulk, self.chunk_workers) as pool:
                self._stage_all(changed, states, pool, deferred)
                with self._lock:
                    self.counters.producer_done = True  # the model may start: keywords are all in
                self._refs_pass(pool, deferred)
        finally:
            with self._lock:
                self.counters.producer_done = True
            self._embed_q.put(_DONE)

    def _stage_all(
        self,
        changed: Sequence[FileEntry],
        states: dict[str, FileState],
        pool: ProcessPoolExecutor | None,
        deferred: list[tuple[FileEntry, str, str]],
    ) -> None:
        """Chunk and stage every changed file; the last commit makes the whole tree keyword-searchable."""
        batch: list[FileUpdate] = []
        vanished: list[str] = []
        touched: list[FileState] = []
        n_chunks = 0
        for entry, update in self._prepared(changed, states, pool):
            self._halt()
            old = states.get(entry.path)
            if update is None:  # vanished since discovery
                if old is not None:
                    vanished.append(entry.path)
                else:
                    with self._lock:
                        self.counters.files_done += 1
                        self.counters.files_staged += 1
            elif not update.content_changed:
                touched.append(update.state)
            else:
                batch.append(update)
                n_chunks += len(update.chunks)
                if update.refs_pending:
                    deferred.append((entry, update.state.hash, update.state.language))
                if update.state.status != "ok":
                    self.skipped.append(Skipped(entry.path, update.state.reason))
            if n_chunks >= BATCH_CHUNKS or len(batch) + len(touched) + len(vanished) >= BATCH_FILES:
                self._stage(batch, vanished, touched)
                batch, vanished, touched, n_chunks = [], [], [], 0
        self._stage(batch, vanished, touched)
        if self._uncommitted:
            self.store.commit_index()  # the whole tree is keyword-searchable from here

    def _stage(self, batch: list[FileUpdate], vanished: list[str], touched: list[FileState]) -> None:
        """One transaction: rows + keywords for ``batch`` (cached vectors included), queue the rest."""
        self._halt()
        self.store.touch_files(touched)
        pending: list[PendingChunk] = []
        complete_files = complete_chunks = 0
        if batch or vanished:
            keys = [k for u in batch for k in u.keys]
            found = self.cache.get_many(self.model_id, keys) if keys else {}
            now = time.perf_counter()
            every = max(COMMIT_EVERY_S, COMMIT_SPACING * (now - self._started))
            commit = not self.concurrent or now - self._last_commit >= every
            staged = self.store.stage(vanished, batch, found, commit=commit)
            self._uncommitted = not commit
            if commit:
                self._last_commit = time.perf_counter()
            with self._lock:
                for u, ids in zip(batch, staged.ids, strict=True):
                    missing = [
                        PendingChunk(cid, key, c.embed_text(), u.state.path)
                        for cid, c, key in zip(ids, u.chunks, u.keys, strict=True)
                        if key not in found
                    ]
                    complete_chunks += len(u.chunks) - len(missing)
                    if missing or u.refs_pending:  # the state row waits for each of these
                        self._outstanding[u.state.path] = [len(missing) + u.refs_pending, u.state]
                        pending.extend(missing)
                    else:
                        complete_files += 1
        with self._lock:
            c = self.counters
            c.files_changed += len(batch)
            c.chunks_written += sum(len(u.chunks) for u in batch)
            c.chunks_staged += sum(len(u.chunks) for u in batch)
            c.files_staged += len(batch) + len(vanished) + len(touched)
            c.files_done += complete_files + len(vanished) + len(touched)
            c.chunks_done += complete_chunks
            c.chunks_pending += len(pending)
        if not pending:
            return
        if self.static is not None:  # encoded in the background: staging never waits for it
            self.static.add_later([(p.id, p.key, p.text) for p in pending])
        if not self.concurrent:
            for i in range(0, len(pending), EMBED_WINDOW):
                self._fill(*self._embed(pending[i : i + EMBED_WINDOW]))
            return
        for item in pending:
            while not self._ahead.acquire(timeout=0.2):  # the model is far behind: wait for it
                self._halt()
            self._embed_q.put(item)

    # -- stage 3: embed ---------------------------------------------------------------------------
    def _embed_loop(self) -> None:
        done = False
        first = True
        while not done:
            item = self._embed_q.get()
            if item is _DONE:
                break
            if first:
                first = False
                self._head_start()
            window = [item]
            deadline = time.monotonic() + 0.5
            while len(window) < EMBED_WINDOW:
                try:
                    nxt = self._embed_q.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is _DONE:
                    done = True
                    break
                window.append(nxt)
            self._halt()
            ids_vecs = self._embed(window)
            for _ in window:
                self._ahead.release()
            self._hand_over(ids_vecs)  # the model goes on with the next window
        self._write_q.put(_DONE)

    def _hand_over(self, item: object) -> None:
        """Queue work for the filler (vectors of a window, or references), waiting while it is busy."""
        while True:
            self._halt()
            try:
                self._write_q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _head_start(self) -> None:
        """Let staging finish first (bounded), then load the model: on 2 cores the model (and
        importing torch for it, ~8 s of CPU) would otherwise take the CPU the chunkers need, and a
        whole tree being keyword-searchable within seconds matters more than its first vectors
        (with the export run directly, ``onnx_direct``, the load is ~0.2 s).
        The model starts early only when the queue of texts is nearly full (staging would block).
        The total time is the same either way, but for the model load when it is not warm yet."""
        deadline = time.perf_counter() + HEAD_START_S
        while time.perf_counter() < deadline and self._embed_q.qsize() < MAX_AHEAD - 2 * BATCH_CHUNKS:
            with self._lock:
                if self.counters.producer_done:
                    break
            self._halt()
            time.sleep(0.05)
        self.embedder.load()

    def _embed(self, window: list[PendingChunk]) -> tuple[list[PendingChunk], dict, dict]:
        """Vectors for a window: the cache first (duplicates, other runs), the model for the rest."""
        texts: dict[str, str] = {}
        for p in window:
            texts.setdefault(p.key, p.text)
        found = self.cache.get_many(self.model_id, texts)
        missing = [k for k in texts if k not in found]
        fresh: dict[str, np.ndarray] = {}
        if missing:
            self.embedder.load()  # load (or export) outside the timed region
            t0 = time.perf_counter()
            with self._lock:
                if self.counters.embed_started is None:
                    self.counters.embed_started = t0
            vecs = self.embedder.embed([texts[k] for k in missing])
            fresh = dict(zip(missing, vecs, strict=True))
            with self._lock:
                self.counters.model_seconds += time.perf_counter() - t0
        found.update(fresh)
        return window, found, fresh

    # -- stage 4: fill ----------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            item = self._write_q.get()
            if item is _DONE:  # the embedder is finished (or the run is stopping)
                return
            self._halt()
            if isinstance(item, RefsBatch):
                self._store_refs(item)
            else:
                self._fill(*item)

    def _fill(self, window: list[PendingChunk], vectors: dict[str, np.ndarray], fresh: dict) -> None:
        self.cache.put_many(self.model_id, fresh)  # the cache first: it is what a crash keeps
        files, completed = self._settle(p.path for p in window)
        now = time.perf_counter()
        commit = not self.concurrent or now - self._last_fill_commit >= FILL_COMMIT_EVERY_S
        self.store.fill_vectors(
            [p.id for p in window],
            np.vstack([vectors[p.key] for p in window]).astype(np.float32),
            files,
            commit=commit,
        )
        if commit:
            self._last_fill_commit = now
        with self._lock:
            c = self.counters
            c.chunks_done += len(window)
            c.chunks_pending -= len(window)
            c.chunks_embedded += len(fresh)
            c.files_done += completed
        if time.perf_counter() - self._last_persist > PERSIST_EVERY_S:
            self.store.persist()
            self._last_persist = time.perf_counter()
