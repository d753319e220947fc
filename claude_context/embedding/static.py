"""A static embedding table for the minutes before a chunk has its transformer vector.

A cold index is keyword-searchable within seconds but its transformer vectors take minutes. A
static table (one vector per token, a text's vector = the normalized mean of its tokens' rows)
distilled from the same bundled model with model2vec embeds a whole tree in about a second, and
ranking the chunks still without a vector by it beside the keywords lifts the early answers
(bench/README.md, "static embeddings while the transformer fills in": mean NDCG@10 on the agent
sets 0.787 -> 0.823 with no transformer vector at all).

The table is built once per machine under the model cache, beside the ONNX export, from the local
weights (never a download), by a niced subprocess in the background: distillation needs torch and
a minute or two of CPU, which must not stall the index nor bloat a server. Until it exists (or when
model2vec is not installed, or the build failed) everything works as before: keywords plus the
transformer vectors there are. Vectors live in memory per codebase (``StaticVectors``) and in the
embedding cache by text (a cache, so a crash loses nothing). Beside a complete index the whole
table ranks every chunk for questions, in codebases up to ``static_complete_max_chunks``: by one
scan up to ``EXACT_SCAN_MAX`` chunks, above it through an HNSW graph of the same vectors.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from claude_context.config import DEFAULT_MODEL, Config
from claude_context.embedding.model import _model_slug, is_bundled, parse_model_id, resolve_model

if TYPE_CHECKING:
    from claude_context.embedding.cache import EmbeddingCache
    from claude_context.index.truth.metadata import MetadataStore
    from claude_context.index.truth.store import CodebaseStore
    from claude_context.index.vectors.hnsw import MemoryHnswIndex

log = logging.getLogger(__name__)
T = TypeVar("T")

STATIC_FORMAT = 1  # bump to rebuild every table (the manifest must match)
PCA_DIMS = 256  # model2vec's default; 384 (no PCA) measured no better (bench/README.md)
MAX_TOKENS = 512  # tokens of a text that count (chunks are ~1000 chars: ~250-400 tokens)
EXACT_SCAN_MAX = 40_000  # chunks ranked by one exact scan (4.7 ms at 89k); above, an HNSW graph
GRAPH_EF = 400  # the graph's search beam: recall@50 of the exact ranking (bench/README.md)
GRAPH_INLINE = 2_000  # chunks added or dropped a search applies to the graph (~0.1 ms each);
# more (a branch switch) rebuild it aside (~6 s at 89k chunks) while scans answer
GRAPH_SLICE = 4096  # vectors added to it between two looks at whether the process is exiting
CACHE_SYNC = 20_000  # vectors a search reads from the cache itself (~30 us each); more: background
RECHECK_S = 2.0  # how often a missing table is looked for on disk again

_TABLES: dict[Path, StaticTable] = {}  # loaded tables, one per folder per process
_BUILDS: dict[Path, subprocess.Popen] = {}  # builds this process started
_CHECKED: dict[Path, float] = {}
_VECTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # codebase store -> StaticVectors
_LOCK = threading.Lock()
_EXITING = threading.Event()  # set at exit: background graph builds stop between two slices
_GRAPH_BUILDS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


@atexit.register
def _stop_builds() -> None:
    """A graph build still running at exit stops after its slice (a daemon thread killed inside
    hnswlib would abort the process: "terminate called without an active exception")."""
    _EXITING.set()
    for thread in list(_GRAPH_BUILDS):
        thread.join(10)


def static_dir(models_dir: Path, name: str) -> Path:
    return models_dir / f"{_model_slug(name)}-static-m2v"


def model2vec_available() -> bool:
    try:
        return importlib.util.find_spec("model2vec") is not None
    except (ImportError, ValueError):
        return False


def _want(source: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        m2v = version("model2vec")
    except PackageNotFoundError:
        m2v = ""
    return {"format": STATIC_FORMAT, "source": source, "pca_dims": PCA_DIMS, "model2vec": m2v}


def _valid(folder: Path, want: dict) -> bool:
    try:
        manifest = json.loads((folder / "claude-context.json").read_text())
    except (OSError, ValueError):
        return False
    return all(manifest.get(k) == v for k, v in want.items()) and (folder / "model.safetensors").is_file()


class StaticTable:
    """A loaded model2vec table: ``encode`` gives normalized float32 vectors. Read directly
    (``static_direct``: model2vec's import costs ~0.17 s a process), through model2vec when the
    folder holds anything else."""

    def __init__(self, folder: Path) -> None:
        from claude_context.embedding.static_direct import StaticEncoder

        self.folder = folder
        try:
            direct = StaticEncoder(folder)
            self.dim, self._encode = direct.dim, direct.encode
        except (OSError, ValueError, KeyError) as exc:
            log.info("static table through model2vec (%s)", exc)
            from model2vec import StaticModel

            model = StaticModel.from_pretrained(str(folder), force_download=False)
            self.dim = int(model.dim)
            self._encode = lambda texts, max_length, batch_size: model.encode(
                texts, max_length=max_length, batch_size=batch_size, use_multiprocessing=False
            )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._encode(list(texts), MAX_TOKENS, 1024).astype(np.float32, copy=False)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vecs / norms


def static_table(models_dir: Path, name: str, *, build: bool = True) -> StaticTable | None:
    """The static table of model ``name`` if it is built; else None, and (``build``) the one-time
    build is started in the background. Only the bundled model gets one (the one measured)."""
    if not is_bundled(name) or not model2vec_available():
        return None
    name = DEFAULT_MODEL  # one table for every name of the bundled model
    source, _ = resolve_model(name)
    folder = static_dir(models_dir, name)
    with _LOCK:
        table = _TABLES.get(folder)
        if table is not None:
            return table
        now = time.monotonic()
        if now - _CHECKED.get(folder, -RECHECK_S) < RECHECK_S:
            return None
        _CHECKED[folder] = now
        if _valid(folder, _want(source)):
            try:
                table = _TABLES[folder] = StaticTable(folder)
                return table
            except Exception as exc:  # a damaged table: keywords only, as without one
                log.warning("cannot load the static embedding table %s (%s)", folder, exc)
                return None
        if build:
            _start_build(folder, source)
    return None


_BUILDING = (
    "preparing the static embedding table (one time, about 1-3 min, in the background; "
    "searches use keywords meanwhile): building %s in %s"
)
_BUILDING_ELSEWHERE = (
    "the static embedding table is being built by another process (one time); searches "
    "use keywords meanwhile: %s in %s"
)


def _build_lock(folder: Path) -> Path:
    """The lock a build of ``folder`` holds (``build``): one builder at a time, across processes."""
    return folder.parent / f".{folder.name}.lock"


def _start_build(folder: Path, source: str) -> None:
    if folder in _BUILDS:  # running, or finished without a valid table (failed): once per process
        return
    log.warning(  # another's build under way: ours waits for it, then reuses its table
        _BUILDING_ELSEWHERE if _building_elsewhere(folder) else _BUILDING, folder.name, folder.parent
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f".{folder.name}.log", "w") as err:
            _BUILDS[folder] = subprocess.Popen(
                [sys.executable, "-m", "claude_context.embedding.static", source, str(folder)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
    except OSError as exc:
        log.warning("cannot start the static table build (%s): keywords only until vectors exist", exc)


def _building_elsewhere(folder: Path) -> bool:
    """Whether another process holds the build lock (``build``) right now."""
    from filelock import FileLock, Timeout

    try:
        with FileLock(_build_lock(folder), timeout=0):
            return False
    except Timeout:
        return True
    except OSError:  # no models folder yet, or unwritable: nobody is building there
        return False


def wait_for_build(models_dir: Path, name: str, timeout: float) -> StaticTable | None:
    """Start the build if needed and wait for it (benches and tests; the engine never waits)."""
    folder = static_dir(models_dir, name)
    deadline = time.monotonic() + timeout
    while True:
        with _LOCK:
            _CHECKED.pop(folder, None)
        table = static_table(models_dir, name)
        proc = _BUILDS.get(folder)
        if table is not None or proc is None or proc.poll() is not None or time.monotonic() > deadline:
            if table is None and proc is not None and proc.poll() is not None:
                with _LOCK:
                    _CHECKED.pop(folder, None)
                table = static_table(models_dir, name, build=False)
            return table
        time.sleep(0.5)


def build(source: str, folder: Path) -> None:
    """Distill ``source`` (a local sentence-transformers folder) into ``folder``, atomically: a
    half-written table is never mistaken for a finished one; a second builder waits, then reuses."""
    from filelock import FileLock

    want = _want(source)
    with FileLock(_build_lock(folder)):
        if _valid(folder, want):
            return
        t0 = time.perf_counter()
        from model2vec.distill import distill

        model = distill(source, pca_dims=PCA_DIMS, device="cpu")
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
        model.save_pretrained(str(tmp))
        manifest = {**want, "dim": int(model.dim), "seconds": round(time.perf_counter() - t0, 1)}
        (tmp / "claude-context.json").write_text(json.dumps(manifest, indent=2))
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        os.replace(tmp, folder)


def vectors_for(store: CodebaseStore, config: Config) -> StaticVectors | None:
    """The static vectors of one open codebase (keyed by its store: a cleared and re-created index
    gets new ones) in this process; None when ``static_embeddings`` is off, the index's model is
    not the bundled one, or the table is not built yet (the first call starts its build)."""
    if not config.static_embeddings:
        return None
    with _LOCK:
        found = _VECTORS.get(store)
    if found is None:
        model_id = store.model_id
        table = static_table(
            config.model_cache_dir, parse_model_id(model_id)[0] if model_id else config.model
        )
        if table is None:
            return None
        with _LOCK:
            found = _VECTORS.setdefault(store, StaticVectors(table, getattr(store, "cache", None)))
    return found


def ranks_complete(config: Config, chunks: int) -> bool:
    """Whether the table ranks beside a complete index of ``chunks`` chunks: on, and a codebase
    small enough that scanning every chunk's vector stays cheap (``static_complete_max_chunks``)."""
    return config.static_complete_weight > 0 and chunks <= config.static_complete_max_chunks


def fill(store: CodebaseStore, config: Config) -> None:
    """At the end of an index run: a static vector for every chunk (from the cache, else encoded
    and cached), so the first search after it, in this process or another, ranks with the whole
    table. Best effort: without the table, or on failure, searches go without it."""
    if not ranks_complete(config, store.meta.chunk_count()):
        return
    try:
        vectors = vectors_for(store, config)
        if vectors is not None:
            vectors.ensure_all(store.meta, sync_limit=sys.maxsize)
    except Exception as exc:
        log.warning("static vectors not filled (%s)", exc)


def release(store: CodebaseStore, config: Config) -> None:
    """Hand the memory back once every chunk of the codebase has its transformer vector, unless
    the table also ranks beside the complete index (``ranks_complete``)."""
    with _LOCK:
        found = _VECTORS.get(store)
    if found is None or ranks_complete(config, store.meta.chunk_count()):
        return
    if store.meta.pending_count() == 0:
        found.clear()


class StaticVectors:
    """One codebase's static vectors, in memory. While indexing they stand in for the transformer
    vectors still missing (the pipeline queues the chunks it stages: ``add_later``, encoded by a
    background thread, ~1-2k chunks/s, so staging never waits); once every chunk has its
    transformer vector, the whole table ranks beside the complete hybrid (``ensure_all``, then
    ``rank``). Each vector is kept in the embedding cache under the table's id, by the chunk's
    text key, so a restart or another process loads it instead of encoding it again. Chunk ids
    are never reused within one index (SQLite AUTOINCREMENT), so a known id keeps its vector."""

    def __init__(self, table: StaticTable, cache: EmbeddingCache | None = None) -> None:
        self.table = table
        self.cache = cache
        self._ids_arr = np.zeros(0, dtype=np.int64)  # sorted
        self._vecs = np.zeros((0, table.dim), dtype=np.float32)  # rows of _ids_arr
        self._fresh: list[tuple[np.ndarray, np.ndarray]] = []  # added since the last merge
        self._ids: set[int] = set()
        self._queued: collections.deque[list[tuple[int, str, str]]] = collections.deque()
        self._queued_ids: set[int] = set()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self.complete_at = -1  # the chunks generation at which every live chunk had a vector
        self._files: tuple[int, list[str], np.ndarray] | None = None  # generation, paths, centroids
        self.exact_max = EXACT_SCAN_MAX
        self._graph: MemoryHnswIndex | None = None  # above exact_max: the vectors' HNSW graph
        self._graph_ids = np.zeros(0, dtype=np.int64)  # the ids it holds (sorted)
        self._graph_lock = threading.Lock()  # its updates, searches and swaps
        self._graph_build: threading.Thread | None = None
        self._graph_epoch = 0  # bumped by clear: a build started before is not installed
        self._filling: threading.Thread | None = None  # a large ensure_all in the background

    def __len__(self) -> int:
        return len(self._ids)

    def add_later(self, items: list[tuple[int, str, str]]) -> None:
        """Queue (chunk id, text key, text) for the background encoder."""
        with self._lock:
            self._queued.append(items)
            self._queued_ids.update(cid for cid, _, _ in items)
            if self._worker is None:
                self._worker = threading.Thread(target=self._drain, name="static-vectors", daemon=True)
                self._worker.start()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queued:
                    self._worker = None
                    return
                items = self._queued.popleft()
            try:
                self.add(items)
            except Exception as exc:  # those chunks stay keyword-only until their vectors arrive
                log.warning("static vectors failed (%s)", exc)
            finally:
                with self._lock:
                    self._queued_ids.difference_update(cid for cid, _, _ in items)

    def add(self, items: Iterable[tuple[int, str, str]]) -> None:
        """Vectors for (chunk id, text key, text): from the cache, else encoded (and cached)."""
        self._encode(self._from_cache([it for it in items if it[0] not in self._ids]))

    def _from_cache(self, items: list[tuple[int, str, T]]) -> list[tuple[int, str, T]]:
        """Keep the vectors the cache has for (chunk id, text key, ...); the items it has not."""
        found = self._cached([key for _, key, _ in items])
        hits = [(cid, key) for cid, key, _ in items if key in found]
        self._keep([cid for cid, _ in hits], [found[key] for _, key in hits])
        return [it for it in items if it[1] not in found]

    def _encode(self, items: list[tuple[int, str, str]]) -> None:
        """Encode (chunk id, text key, text), cache the vectors by key and keep them."""
        if not items:
            return
        vecs = self.table.encode([text for _, _, text in items])
        self._cache_put({key: v for (_, key, _), v in zip(items, vecs, strict=True)})
        self._keep([cid for cid, _, _ in items], list(vecs))

    def _keep(self, ids: list[int], vectors: list[np.ndarray]) -> None:
        if not ids:
            return
        vecs = np.stack(vectors).astype(np.float32, copy=False)
        with self._lock:
            self._fresh.append((np.asarray(ids, dtype=np.int64), vecs))
            self._ids.update(ids)

    @property
    def cache_id(self) -> str:
        return f"static-m2v:{STATIC_FORMAT}:{self.table.folder.name}:{self.table.dim}"

    def _cached(self, keys: list[str]) -> dict[str, np.ndarray]:
        if self.cache is None or not keys:
            return {}
        try:
            found = self.cache.get_many(self.cache_id, keys)
        except Exception as exc:  # only a cache: encode instead
            log.warning("static vector cache unreadable (%s)", exc)
            return {}
        return {k: v for k, v in found.items() if v.shape == (self.table.dim,)}

    def _cache_put(self, made: dict[str, np.ndarray]) -> None:
        if self.cache is not None and made:
            try:
                self.cache.put_many(self.cache_id, made)
            except Exception as exc:  # only a cache: the vectors are still used
                log.warning("cannot cache static vectors (%s)", exc)

    def missing(self, ids: Iterable[int]) -> list[int]:
        """Ids neither encoded nor queued."""
        return [i for i in ids if i not in self._ids and i not in self._queued_ids]

    def clear(self) -> None:
        with self._lock:
            self._ids_arr = np.zeros(0, dtype=np.int64)
            self._vecs = np.zeros((0, self.table.dim), dtype=np.float32)
            self._fresh, self._ids = [], set()
            self._queued.clear()
            self._queued_ids.clear()
            self.complete_at = -1
            self._files = None
        with self._graph_lock:
            self._graph, self._graph_ids = None, np.zeros(0, dtype=np.int64)
            self._graph_epoch += 1  # a build under way is thrown away

    def ensure_all(self, meta: MetadataStore, sync_limit: int) -> bool:
        """Whether every chunk of the index has its static vector now. Missing ones come from the
        cache, or are encoded here when at most ``sync_limit`` (a search waits ~1 ms each), else
        in the background (this search goes without). Vectors of deleted chunks are dropped.
        Checked again only when the set of chunks changed (``chunks_generation``), not each time
        transformer vectors arrive: searches while indexing would redo it every time."""
        generation = meta.chunks_generation()
        if generation == self.complete_at:
            return True
        keys = meta.embed_keys()
        with self._lock:
            self._merge(keep=keys.keys())
        missing = self.missing(keys)
        if len(missing) > max(sync_limit, CACHE_SYNC):  # e.g. a server's first search, 89k chunks
            self._fill_later(meta)
            return False
        todo = [i for i, _, _ in self._from_cache([(i, keys[i], None) for i in missing])]
        if todo:  # their texts are read only now: most vectors come from the cache
            texts = {sc.id: sc.chunk.embed_text() for batch in meta.iter_chunks(todo) for sc in batch}
            items = [(i, keys[i], texts[i]) for i in todo if i in texts]
            if len(items) > sync_limit:
                self.add_later(items)
                return False
            self._encode(items)
        with self._lock:
            if self._queued_ids:
                return False
            self._merge()  # here, not in the next search
        self.complete_at = generation
        self.prepare_graph()
        return True

    def _fill_later(self, meta: MetadataStore) -> None:
        """``ensure_all`` without a limit, once at a time, in a background thread."""
        with self._lock:
            if self._filling is not None:
                return
            self._filling = threading.Thread(target=self._fill, args=(meta,), name="static-fill", daemon=True)
            self._filling.start()

    def _fill(self, meta: MetadataStore) -> None:
        try:
            self.ensure_all(meta, sys.maxsize)
        except Exception as exc:  # searches go on without the table's ranking
            log.warning("static vectors not filled (%s)", exc)
        finally:
            with self._lock:
                self._filling = None

    def _merge(self, keep: Iterable[int] | None = None) -> None:
        """Fold the vectors added since into the sorted matrix (caller holds the lock); ``keep``:
        the live chunk ids (others are dropped)."""
        if not self._fresh and keep is None:
            return
        ids = np.concatenate([self._ids_arr, *(i for i, _ in self._fresh)])
        vecs = np.concatenate([self._vecs, *(v for _, v in self._fresh)]) if self._fresh else self._vecs
        self._fresh = []
        if keep is not None:
            live = np.fromiter(keep, dtype=np.int64)
            mask = np.isin(ids, live)
            if not mask.all():
                ids, vecs = ids[mask], vecs[mask]
                self._ids = set(ids.tolist())
        ids, first = np.unique(ids, return_index=True)  # sorted; a chunk two searches added once
        self._ids_arr, self._vecs = ids, vecs[first]

    def _snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """The sorted ids and their vectors, with every vector added so far folded in."""
        with self._lock:
            self._merge()
            return self._ids_arr, self._vecs

    def rank(self, query: str | np.ndarray, allowed: set[int] | None, k: int) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest the query (text, or its vector from ``query_vector``) by
        cosine, best first; ``allowed``: only those."""
        if (allowed is not None and not allowed) or k < 1:
            return []
        q = self.query_vector(query) if isinstance(query, str) else query
        ids, vecs = self._snapshot()
        if len(ids) > self.exact_max and (allowed is None or len(allowed) > self.exact_max):
            found = self._graph_rank(ids, vecs, q, allowed, k)
            if found is not None:
                return found
        if allowed is not None:
            keep = np.isin(ids, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
            ids, vecs = ids[keep], vecs[keep]
        if not len(ids):
            return []
        scores = vecs @ q
        if len(scores) > k:
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
        else:
            top = np.argsort(-scores, kind="stable")
        return [(int(ids[i]), float(scores[i])) for i in top]

    def query_vector(self, query: str) -> np.ndarray:
        return self.table.encode([query])[0]

    def _graph_rank(
        self, ids: np.ndarray, vecs: np.ndarray, q: np.ndarray, allowed: set[int] | None, k: int
    ) -> list[tuple[int, float]] | None:
        """The ranking by the HNSW graph of the vectors (``ids``/``vecs``: the sorted matrix now),
        brought up to date first: the chunks an edit added or dropped are applied here (a few,
        sub-millisecond); a first graph, or one behind by more than ``GRAPH_INLINE`` chunks, is
        built in a background thread (~6 s at 89k chunks), and None asks for the exact scan
        meanwhile."""
        with self._graph_lock:
            graph = self._current_graph(ids, vecs)
            hits = graph.search(q, k, allowed) if graph is not None else None
        return [(h.id, h.score) for h in hits] if hits is not None else None

    def _current_graph(self, ids: np.ndarray, vecs: np.ndarray) -> MemoryHnswIndex | None:
        """The graph, holding exactly ``ids`` (caller holds ``_graph_lock``), or None while one
        is built aside (started here if none is)."""
        graph, held = self._graph, self._graph_ids
        if graph is not None and not np.array_equal(held, ids):
            added = np.setdiff1d(ids, held, assume_unique=True)
            dropped = np.setdiff1d(held, ids, assume_unique=True)
            if len(added) + len(dropped) > GRAPH_INLINE:
                graph = None
            else:
                graph.delete(dropped.tolist())
                graph.add(added.tolist(), vecs[np.searchsorted(ids, added)])
                self._graph_ids = ids
        if graph is None and self._graph_build is None:
            self._graph_build = threading.Thread(
                target=self._build_graph,
                args=(ids, vecs, self._graph_epoch),
                name="static-graph",
                daemon=True,
            )
            _GRAPH_BUILDS.add(self._graph_build)
            self._graph_build.start()
        return graph

    @property
    def graph_size(self) -> int:
        """Chunks in the graph (0: none; ranking scans every vector)."""
        graph = self._graph
        return graph.count() if graph is not None else 0

    def prepare_graph(self) -> None:
        """Start building the graph now if the codebase is large enough to want one, so the
        first searches after an index run find it ready (``fill``, ``ensure_all``)."""
        ids, vecs = self._snapshot()
        with self._graph_lock:
            if len(ids) > self.exact_max:
                self._current_graph(ids, vecs)
            else:  # the codebase shrank below the size that wants one: its memory back
                self._graph, self._graph_ids = None, np.zeros(0, dtype=np.int64)

    def settle(self, timeout: float) -> bool:
        """Wait for a background fill and graph build under way (benches and tests); whether
        none is running."""
        deadline = time.monotonic() + timeout
        for attr in ("_filling", "_graph_build"):
            worker = getattr(self, attr)
            if worker is not None:
                worker.join(max(0.0, deadline - time.monotonic()))
        return self._filling is None and self._graph_build is None

    def _build_graph(self, ids: np.ndarray, vecs: np.ndarray, epoch: int) -> None:
        """One thread of hnswlib's (the other cores stay with the searches), in slices, so an
        exiting process stops it between two (``_stop_builds``) instead of dying inside it."""
        from claude_context.index.vectors.hnsw import MemoryHnswIndex

        graph: MemoryHnswIndex | None = None
        try:
            graph = MemoryHnswIndex(
                self.table.dim, ef_construction=100, ef_search=GRAPH_EF, initial_capacity=len(ids)
            )
            graph.add_threads = 1
            for start in range(0, len(ids), GRAPH_SLICE):
                if _EXITING.is_set():
                    graph = None
                    break
                graph.add(ids[start : start + GRAPH_SLICE].tolist(), vecs[start : start + GRAPH_SLICE])
        except Exception as exc:  # the exact scan goes on serving, from now on
            log.warning("static vector graph not built (%s): exact scans", exc)
            graph, self.exact_max = None, sys.maxsize
        with self._graph_lock:
            if graph is not None and epoch == self._graph_epoch:  # not cleared meanwhile
                self._graph, self._graph_ids = graph, ids
            self._graph_build = None

    def file_scores(self, q: np.ndarray, meta: MetadataStore) -> dict[str, float]:
        """Each file's closeness to the query vector ``q``, by the mean of its chunks' vectors
        (a file's topic, which no single chunk of it carries), scaled so the median file scores
        0 and the best 1 (below the median: 0). Call after ``ensure_all`` returned True; the
        centroids are computed once per chunks generation (~5 ms at 7k chunks)."""
        files = self._files
        if files is None or files[0] != self.complete_at:
            files = self._centroids(meta)
        _, paths, centroids = files
        if not paths:
            return {}
        sims = centroids @ q
        mid, top = float(np.median(sims)), float(sims.max())
        scaled = np.clip((sims - mid) / ((top - mid) or 1.0), 0.0, None)
        return {p: float(v) for p, v in zip(paths, scaled, strict=True) if v > 0.0}

    def _centroids(self, meta: MetadataStore) -> tuple[int, list[str], np.ndarray]:
        generation = self.complete_at
        ids, vecs = self._snapshot()
        of = meta.chunk_paths()
        held = ids.tolist()
        paths = sorted({of[i] for i in held if i in of})
        row = {p: n for n, p in enumerate(paths)}
        index = np.fromiter((row[of[i]] if i in of else -1 for i in held), dtype=np.int64, count=len(held))
        live = index >= 0
        rows, vecs = index[live], vecs[live]
        sums = np.zeros((len(paths), self.table.dim), dtype=np.float32)
        if len(rows):  # one pass over each file's run of rows (np.add.at: 3x slower)
            order = np.argsort(rows, kind="stable")
            rows, vecs = rows[order], vecs[order]
            starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            sums[rows[starts]] = np.add.reduceat(vecs, starts, axis=0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        self._files = (generation, paths, sums / norms)
        return self._files


def _main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(AttributeError, OSError):
        os.nice(10)  # a background build: the index and the searches come first
    source, folder = argv[0], Path(argv[1])
    try:
        build(source, folder)
    except Exception as exc:  # the parent only needs "no table"
        print(f"static table build failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
