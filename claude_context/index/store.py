"""A codebase's index folder: SQLite metadata (truth) kept in step with the derived chunk index.

Every change is one SQLite transaction that bumps the ``generation``; the chunk index is then
updated and stamped with that generation. If the process dies in between, the next open sees
the stamps disagree and repairs the derived index from SQLite and the embedding cache, by id
difference, without re-embedding anything that was embedded before.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from claude_context.embedding import EmbeddingCache
from claude_context.index.base import ChunkIndex, KeywordDoc
from claude_context.index.factory import IndexOptions
from claude_context.index.metadata import FileState, MetadataStore, StoredChunk
from claude_context.locking import WriteLock
from claude_context.models import Chunk, sha

log = logging.getLogger(__name__)

IndexFactory = Callable[[Path, int, IndexOptions], ChunkIndex]


@dataclass(slots=True)
class FileUpdate:
    """A file's new state and its chunks with their embedding-cache keys (row-aligned)."""

    state: FileState
    chunks: list[Chunk] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    content_changed: bool = True  # False: same content, only stat data to record


def codebase_folder(codebases_dir: Path, root: Path) -> Path:
    """Stable folder name for a root: readable basename plus a hash of the absolute path."""
    root = root.resolve()
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in root.name)[:40] or "root"
    return codebases_dir / f"{name}-{sha(str(root))[:12]}"


def to_keyword_doc(sc: StoredChunk) -> KeywordDoc:
    c = sc.chunk
    return KeywordDoc(id=sc.id, path=c.path, symbol=c.symbol, content=c.content, context=c.context)


class CodebaseStore:
    """Open one codebase folder. Cheap to construct; the chunk index opens on first use."""

    def __init__(self, folder: Path, cache: EmbeddingCache, index_factory: IndexFactory) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.meta = MetadataStore(folder / "index.sqlite")
        self.cache = cache
        self.lock = WriteLock(folder / "write.lock")
        self._factory = index_factory
        self._index: ChunkIndex | None = None
        self._synced_generation: int | None = None
        self._options_override: IndexOptions | None = None  # carries secrets (tokens) not persisted

    # -- identity --------------------------------------------------------------------------------
    @property
    def root(self) -> Path | None:
        root = self.meta.get_meta("root")
        return Path(root) if root else None

    @property
    def dim(self) -> int | None:
        dim = self.meta.get_meta("dim")
        return int(dim) if dim else None

    @property
    def model_id(self) -> str | None:
        return self.meta.get_meta("model_id")

    def index_options(self) -> IndexOptions:
        raw = json.loads(self.meta.get_meta("index_options", "{}") or "{}")
        return IndexOptions(**{k: v for k, v in raw.items() if k in IndexOptions.__dataclass_fields__})

    def set_index_options(self, options: IndexOptions) -> bool:
        """Record new backend options; on a change, drop the derived index so ``sync`` rebuilds it
        from SQLite and the embedding cache (nothing is re-embedded). Returns True if changed."""
        old = self.index_options()
        if old.to_dict() == options.to_dict() and self.meta.get_meta("index_options"):
            return False
        if self._index is not None:
            self._index.close()
            self._index = None
        if old.store != options.store:
            self._drop_local_files(("vectors", "bm25"))
        elif old.quantization != options.quantization:
            self._drop_local_files(("vectors",))
        self.meta.set_meta(index_options=json.dumps(options.to_dict()))
        self._options_override = options
        self._synced_generation = None
        return True

    def _drop_local_files(self, prefixes: tuple[str, ...]) -> None:
        for p in self.folder.iterdir():
            if p.name.startswith(prefixes):
                shutil.rmtree(p) if p.is_dir() else p.unlink()

    def chunk_index(self, dim: int | None = None) -> ChunkIndex | None:
        """The derived index, opened lazily once the vector dimension is known."""
        if self._index is None:
            dim = dim or self.dim
            if dim is None:
                return None
            self._index = self._factory(self.folder, dim, self._options_override or self.index_options())
        return self._index

    # -- writes (caller holds the write lock) ----------------------------------------------------
    def apply(
        self, deleted: Sequence[str], updates: Sequence[FileUpdate], vectors: dict[str, np.ndarray]
    ) -> int:
        """Replace the given files' chunks atomically in SQLite, then in the chunk index."""
        docs: list[KeywordDoc] = []
        rows: list[np.ndarray] = []
        with self.meta.transaction() as con:
            removed = MetadataStore.delete_paths(con, [*deleted, *(u.state.path for u in updates)])
            for u in updates:
                ids = MetadataStore.insert_chunks(con, u.chunks, u.keys)
                for cid, c, key in zip(ids, u.chunks, u.keys, strict=True):
                    docs.append(KeywordDoc(cid, c.path, c.symbol, c.content, c.context))
                    rows.append(vectors[key])
            MetadataStore.upsert_files(con, [u.state for u in updates])
            generation = MetadataStore.bump_generation(con)
        index = self.chunk_index(len(rows[0]) if rows else None)
        if index is not None:
            index.delete(removed)
            index.add(docs, np.vstack(rows) if rows else np.zeros((0, 0), np.float32))
            index.commit(generation, durable=False)
        self._synced_generation = generation
        return generation

    def touch_files(self, states: Sequence[FileState]) -> None:
        """Record new stat data for files whose content did not change (no index work)."""
        if states:
            with self.meta.transaction() as con:
                MetadataStore.upsert_files(con, states)

    def persist(self) -> None:
        """Durably save the derived index, stamped with the current generation."""
        index = self.chunk_index()
        if index is not None:
            index.commit(self.meta.generation(), durable=True)

    def clear(self) -> None:
        """Remove the whole codebase folder (metadata and derived index)."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def reset_index(self) -> None:
        """Drop all files/chunks and the derived index (model change): keeps identity meta."""
        if self._index is not None:
            self._index.close()
            self._index = None
        with self.meta.transaction() as con:
            con.execute("DELETE FROM chunks")
            con.execute("DELETE FROM files")
            MetadataStore.bump_generation(con)
        self._drop_local_files(("vectors", "bm25"))

    # -- consistency -----------------------------------------------------------------------------
    def sync(self, model_id: str, durable: bool) -> dict[str, int]:
        """Bring the derived index in line with SQLite by id difference.

        With ``durable`` (writer holds the lock) both sub-indexes are repaired and saved. Without
        it (a reader process) only the in-memory vector index is patched: the keyword index is
        committed by the writer and readers see its commits directly.
        Returns counts; ``missing_vectors`` > 0 means some vectors were not in the cache.
        """
        generation = self.meta.generation()
        index = self.chunk_index()
        report = {"added": 0, "removed": 0, "missing_vectors": 0}
        if index is None or (self._synced_generation == generation and not durable):
            return report
        if durable and index.generation() == generation:
            self._synced_generation = generation
            return report
        t0 = time.perf_counter()
        db_ids = self.meta.chunk_ids()
        vec_ids, kw_ids = index.ids()
        stale_v, stale_k = sorted(vec_ids - db_ids), sorted(kw_ids - db_ids)
        need_v = db_ids - vec_ids
        need_k = (db_ids - kw_ids) if durable else set()
        index.delete_vectors(stale_v)
        if durable:
            index.delete_keywords(stale_k)
        for batch in self.meta.iter_chunks(need_v | need_k):
            vec_rows = [sc for sc in batch if sc.id in need_v]
            if vec_rows:
                found = self.cache.get_many(model_id, [sc.embed_key for sc in vec_rows])
                have = [sc for sc in vec_rows if sc.embed_key in found]
                report["missing_vectors"] += len(vec_rows) - len(have)
                if have:
                    index.add_vectors([sc.id for sc in have], np.vstack([found[sc.embed_key] for sc in have]))
            kw_rows = [to_keyword_doc(sc) for sc in batch if sc.id in need_k]
            index.add_keywords(kw_rows)
        report["added"] = len(need_v | need_k)
        report["removed"] = len(set(stale_v) | set(stale_k))
        if durable:
            index.commit(generation, durable=True)
        self._synced_generation = generation
        if report["added"] or report["removed"]:
            log.info("index sync: %s in %.2fs", report, time.perf_counter() - t0)
        return report

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        self.meta.close()
        self.lock.release()
