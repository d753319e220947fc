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
transformer vectors there are. Vectors live in memory per codebase (``StaticVectors``), only for
chunks still pending their transformer vector; nothing of them is stored, so a crash loses nothing.
"""

from __future__ import annotations

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
from typing import TYPE_CHECKING

import numpy as np

from claude_context.config import DEFAULT_MODEL, Config
from claude_context.embedding.model import _model_slug, is_bundled, parse_model_id, resolve_model

if TYPE_CHECKING:
    from claude_context.index.truth.store import CodebaseStore

log = logging.getLogger(__name__)

STATIC_FORMAT = 1  # bump to rebuild every table (the manifest must match)
PCA_DIMS = 256  # model2vec's default; 384 (no PCA) measured no better (bench/README.md)
MAX_TOKENS = 512  # tokens of a text that count (chunks are ~1000 chars: ~250-400 tokens)
RECHECK_S = 2.0  # how often a missing table is looked for on disk again

_TABLES: dict[Path, StaticTable] = {}  # loaded tables, one per folder per process
_BUILDS: dict[Path, subprocess.Popen] = {}  # builds this process started
_CHECKED: dict[Path, float] = {}
_VECTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # codebase store -> StaticVectors
_LOCK = threading.Lock()


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
    """A loaded model2vec table: ``encode`` gives normalized float32 vectors."""

    def __init__(self, folder: Path) -> None:
        from model2vec import StaticModel

        self.folder = folder
        self.model = StaticModel.from_pretrained(str(folder), force_download=False)
        self.dim = int(self.model.dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            list(texts), max_length=MAX_TOKENS, batch_size=1024, use_multiprocessing=False
        ).astype(np.float32, copy=False)
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


def _start_build(folder: Path, source: str) -> None:
    if folder in _BUILDS:  # running, or finished without a valid table (failed): once per process
        return
    log.warning(
        "preparing the static embedding table (one time, about 1-3 min, in the background; "
        "searches use keywords meanwhile): building %s in %s",
        folder.name,
        folder.parent,
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
    with FileLock(folder.parent / f".{folder.name}.lock"):
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
            found = _VECTORS.setdefault(store, StaticVectors(table))
    return found


def release(store: CodebaseStore) -> None:
    """Hand the memory back once every chunk of the codebase has its transformer vector."""
    with _LOCK:
        found = _VECTORS.get(store)
    if found is not None and store.meta.pending_count() == 0:
        found.clear()


class StaticVectors:
    """One codebase's static vectors, in memory, for the chunks still waiting for a transformer
    vector. The indexing pipeline queues the chunks it stages (``add_later``: encoded by a
    background thread, ~1-2k chunks/s, so staging never waits); a search adds pending chunks it has
    not seen (another process staged them, or the table arrived late). Chunk ids are never reused
    within one index (SQLite AUTOINCREMENT), so a known id keeps its vector."""

    def __init__(self, table: StaticTable) -> None:
        self.table = table
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []  # (ids int64, vectors float16)
        self._ids: set[int] = set()
        self._queued: collections.deque[list[tuple[int, str]]] = collections.deque()
        self._queued_ids: set[int] = set()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def add_later(self, items: list[tuple[int, str]]) -> None:
        with self._lock:
            self._queued.append(items)
            self._queued_ids.update(cid for cid, _ in items)
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
                    self._queued_ids.difference_update(cid for cid, _ in items)

    def add(self, items: Iterable[tuple[int, str]]) -> None:
        fresh = [(cid, text) for cid, text in items if cid not in self._ids]
        if not fresh:
            return
        vecs = self.table.encode([t for _, t in fresh]).astype(np.float16)
        ids = np.fromiter((cid for cid, _ in fresh), dtype=np.int64, count=len(fresh))
        with self._lock:
            self._blocks.append((ids, vecs))
            self._ids.update(ids.tolist())

    def missing(self, ids: Iterable[int]) -> list[int]:
        """Ids neither encoded nor queued."""
        return [i for i in ids if i not in self._ids and i not in self._queued_ids]

    def clear(self) -> None:
        with self._lock:
            self._blocks, self._ids = [], set()
            self._queued.clear()
            self._queued_ids.clear()

    def rank(self, query: str, allowed: set[int], k: int) -> list[tuple[int, float]]:
        """The ``k`` chunks of ``allowed`` nearest the query by cosine, best first."""
        if not allowed or k < 1:
            return []
        q = self.table.encode([query])[0]
        with self._lock:
            blocks = list(self._blocks)
        wanted = np.fromiter(allowed, dtype=np.int64, count=len(allowed))
        found_ids, found_scores = [], []
        for ids, vecs in blocks:
            keep = np.isin(ids, wanted, assume_unique=True)
            if keep.any():
                found_ids.append(ids[keep])
                found_scores.append(vecs[keep].astype(np.float32) @ q)
        if not found_ids:
            return []
        ids, scores = np.concatenate(found_ids), np.concatenate(found_scores)
        top = np.argsort(-scores, kind="stable")[:k]
        return [(int(ids[i]), float(scores[i])) for i in top]


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
