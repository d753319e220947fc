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
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from claude_context.index.base import ChunkIndex, KeywordDoc
from claude_context.index.registry import IndexOptions
from claude_context.index.truth.identifiers import IdentifierIndex
from claude_context.index.truth.lock import WriteLock
from claude_context.index.truth.metadata import FileState, MetadataStore, StoredChunk
from claude_context.records import Chunk, Ref, sha

log = logging.getLogger(__name__)

IndexFactory = Callable[[Path, int, IndexOptions], ChunkIndex]


class VectorCache(Protocol):
    """Where stored chunks' vectors come from when the derived index is repaired (the embedding
    cache: ``claude_context.embedding.EmbeddingCache``)."""

    def get_many(self, model_id: str, keys: Iterable[str]) -> dict[str, np.ndarray]: ...


@dataclass(slots=True)
class FileUpdate:
    """A file's new state and its chunks with their embedding-cache keys (row-aligned)."""

    state: FileState
    chunks: list[Chunk] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    content_changed: bool = True  # False: same content, only stat data to record
    refs: list[Ref] = field(default_factory=list)  # where the file uses names (``chunkers/refs.py``)
    refs_pending: bool = False  # refs come later (``add_refs``): the state row waits for them too
    tokens: list[tuple[str, str, str]] = field(default_factory=list)  # per chunk, see ``KeywordDoc``


@dataclass(slots=True)
class Staged:
    """What ``CodebaseStore.stage`` wrote: the generation and each update's new chunk ids."""

    generation: int
    ids: list[list[int]] = field(default_factory=list)


def codebase_folder(codebases_dir: Path, root: Path) -> Path:
    """Stable folder name for a root: readable basename plus a hash of the absolute path."""
    root = root.resolve()
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in root.name)[:40] or "root"
    return codebases_dir / f"{name}-{sha(str(root))[:12]}"


def to_keyword_doc(sc: StoredChunk) -> KeywordDoc:
    return keyword_doc(sc.id, sc.chunk)


def keyword_doc(cid: int, c: Chunk, tokens: tuple[str, str, str] | None = None) -> KeywordDoc:
    return KeywordDoc(
        cid, c.path, c.symbol, c.content, c.context, c.language, c.kind, c.start_line, c.end_line, tokens
    )


class CodebaseStore:
    """Open one codebase folder. Cheap to construct; the chunk index opens on first use."""

    def __init__(self, folder: Path, cache: VectorCache, index_factory: IndexFactory) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.meta = MetadataStore(folder / "index.sqlite")
        self.cache = cache
        self.lock = WriteLock(folder / "write.lock", on_release=self._release_writers)
        self._factory = index_factory
        self._index: ChunkIndex | None = None
        self._synced_generation: int | None = None
        self._options_override: IndexOptions | None = None  # carries secrets (tokens) not persisted
        # Serialises this process's writers (the pipeline's chunk stager and vector filler) and
        # in-process repairs, so generations are applied to the derived index in order.
        self._write_lock = threading.RLock()

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
        """Record new backend options; on a change, drop the derived index so ``repair`` rebuilds it
        from SQLite and the embedding cache (nothing is re-embedded). Returns True if changed."""
        old = self.index_options()
        if old.to_dict() == options.to_dict() and self.meta.get_meta("index_options"):
            return False
        if self._index is not None:
            self._index.close()
            self._index = None
        if old.store != options.store and old.store != "local" and self.meta.get_meta("index_options"):
            self._drop_remote(old)
        if old.store != options.store:
            self._drop_local_files(("vectors", "bm25"))
        elif old.quantization != options.quantization:
            self._drop_local_files(("vectors",))
        self.meta.set_meta(index_options=json.dumps(options.to_dict()))
        self._options_override = options
        self._synced_generation = None
        return True

    def _drop_remote(self, old: IndexOptions) -> None:
        """Leaving a remote store: drop this codebase's collection there (best effort)."""
        dim = self.dim
        if dim is None:
            return
        try:
            index = self._factory(self.folder, dim, old)
            try:
                index.drop()
            finally:
                index.close()
        except Exception as exc:  # the switch goes on: the old collection is derived data
            log.warning("could not drop the old derived index of %s: %s", self.folder, exc)

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
        """Replace the given files' chunks atomically in SQLite, then in the chunk index.

        Chunks whose key has no vector in ``vectors`` are staged as pending (see ``stage``).
        """
        return self.stage(deleted, updates, vectors).generation

    def stage(
        self,
        deleted: Sequence[str],
        updates: Sequence[FileUpdate],
        vectors: dict[str, np.ndarray],
        *,
        commit: bool = True,
    ) -> Staged:
        """Phase one of progressive indexing: rows and keywords now, vectors when they exist.

        Every chunk is stored and keyword-searchable at once; one whose key has no vector in
        ``vectors`` is recorded in ``pending_vectors`` and its file's state row is held back until
        ``fill_vectors`` supplies the file's last vector. A crash in between leaves that file
        without state, so the next run re-chunks it (its embedded chunks come from the cache)
        instead of trusting a half-embedded file. ``commit=False`` leaves making the changes
        visible to keyword search to a later ``commit_index`` (a bulk run commits once a second,
        not per batch: a commit costs ~0.1 s).
        """
        docs: list[KeywordDoc] = []
        rows: list[np.ndarray] = []
        keyword_only: list[KeywordDoc] = []
        pending: list[int] = []
        staged = Staged(0)
        with self._write_lock:
            with self.meta.transaction() as con:
                removed = MetadataStore.delete_paths(con, [*deleted, *(u.state.path for u in updates)])
                MetadataStore.drop_pending(con, removed)
                complete: list[FileState] = []
                for u in updates:
                    ids = MetadataStore.insert_chunks(con, u.chunks, u.keys)
                    IdentifierIndex.insert(con, u.state.path, u.refs)
                    staged.ids.append(ids)
                    whole = True
                    for j, (cid, c, key) in enumerate(zip(ids, u.chunks, u.keys, strict=True)):
                        doc = keyword_doc(cid, c, u.tokens[j] if u.tokens else None)
                        vec = vectors.get(key)
                        if vec is None:
                            keyword_only.append(doc)
                            pending.append(cid)
                            whole = False
                        else:
                            docs.append(doc)
                            rows.append(vec)
                    if whole and not u.refs_pending:
                        complete.append(u.state)
                MetadataStore.add_pending(con, pending)
                MetadataStore.upsert_files(con, complete)
                staged.generation = MetadataStore.bump_generation(con, chunks=True)
            index = self.chunk_index(len(rows[0]) if rows else None)
            if index is not None:
                index.delete(removed)
                if docs:
                    index.add(docs, np.vstack(rows))
                if keyword_only:
                    index.add_keywords(keyword_only)
                if commit:
                    index.commit(staged.generation, durable=False)
            self._synced_generation = staged.generation
        return staged

    def fill_vectors(
        self, ids: Sequence[int], vectors: np.ndarray, files: Sequence[FileState] = (), *, commit: bool = True
    ) -> int:
        """Phase two: vectors of pending chunks, plus the state rows of files now complete.

        Ids that are no longer pending (their file was re-chunked or deleted meanwhile) are
        skipped. Returns the new generation.
        """
        with self._write_lock:
            with self.meta.transaction() as con:
                live = set(MetadataStore.take_pending(con, ids))
                MetadataStore.upsert_files(con, files)
                generation = MetadataStore.bump_generation(con)
            keep = [i for i, cid in enumerate(ids) if cid in live]
            index = self.chunk_index(int(vectors.shape[1]) if len(vectors) else None)
            if index is not None:
                if keep:
                    index.add_vectors([int(ids[i]) for i in keep], vectors[keep])
                if commit:
                    index.commit(generation, durable=False)
            self._synced_generation = generation
        return generation

    def add_refs(self, refs: Sequence[tuple[str, Sequence[Ref]]], files: Sequence[FileState] = ()) -> None:
        """References of staged files whose extraction was deferred (a bulk run stages keywords
        first), plus the state rows of files now complete, in one transaction."""
        with self._write_lock, self.meta.transaction() as con:
            for path, found in refs:
                IdentifierIndex.insert(con, path, found)
            MetadataStore.upsert_files(con, files)

    def commit_index(self) -> None:
        """Make staged changes visible to searches (not durable: see ``persist``)."""
        with self._write_lock:
            index = self.chunk_index()
            if index is not None:
                index.commit(self.meta.generation(), durable=False)

    def touch_files(self, states: Sequence[FileState]) -> None:
        """Record new stat data for files whose content did not change (no index work)."""
        if states:
            with self._write_lock, self.meta.transaction() as con:
                MetadataStore.upsert_files(con, states)

    def _release_writers(self) -> None:
        """Called as the write lock is released: backends drop their own writer locks (tantivy's),
        or a process that wrote once would keep every other process from writing."""
        index = self._index
        if index is not None:
            try:
                index.release_writer()
            except Exception as exc:  # never keep the write lock because of this
                log.warning("could not release the index writer of %s: %s", self.folder, exc)

    def persist(self) -> None:
        """Durably save the derived index, stamped with the current generation."""
        with self._write_lock:
            index = self.chunk_index()
            if index is not None:
                index.commit(self.meta.generation(), durable=True)

    def clear(self) -> None:
        """Remove the whole codebase folder (metadata and derived index) and a remote collection."""
        if self.index_options().store != "local":  # local derived files go with the folder
            try:
                index = self.chunk_index()
                if index is not None:
                    index.drop()
            except Exception as exc:  # an unreachable store must not keep the local index alive
                log.warning("could not drop the derived index of %s: %s", self.folder, exc)
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
            con.execute("DELETE FROM pending_vectors")
            con.execute("DELETE FROM refs")
            MetadataStore.bump_generation(con, chunks=True)
        self._drop_local_files(("vectors", "bm25"))

    # -- consistency -----------------------------------------------------------------------------
    def repair(self, model_id: str, durable: bool) -> dict[str, int]:
        """Bring the derived index in line with SQLite by id difference.

        With ``durable`` (writer holds the lock) both sub-indexes are repaired and saved. Without
        it (a reader process) only the in-memory vector index is patched: the keyword index is
        committed by the writer and readers see its commits directly.
        Chunks whose vectors are pending (progressive indexing) are left to the indexer. With
        ``durable``, a chunk whose vector is neither in the index nor in the cache (the cache was
        deleted, or a crash beat the cache write) becomes pending and its file loses its state
        row, so the next index run re-chunks and re-embeds it instead of leaving it unsearchable.
        Returns counts; ``missing_vectors`` > 0 means some vectors were not in the cache.
        """
        with self._write_lock:
            return self._repair(model_id, durable)

    def _repair(self, model_id: str, durable: bool) -> dict[str, int]:
        generation = self.meta.generation()
        index = self.chunk_index()
        report = {"added": 0, "removed": 0, "missing_vectors": 0}
        if index is None or (self._synced_generation == generation and not durable):
            return report
        if not durable and not index.reader_patches:  # a shared store: the writer keeps it current
            self._synced_generation = generation
            return report
        if durable and index.generation() == generation:
            self._synced_generation = generation
            return report
        t0 = time.perf_counter()
        db_ids = self.meta.chunk_ids()
        pending = self.meta.pending_ids()
        vec_ids, kw_ids = index.ids()
        stale_v, stale_k = sorted(vec_ids - db_ids), sorted(kw_ids - db_ids)
        need_v = db_ids - vec_ids - pending
        lost: list[StoredChunk] = []
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
                lost.extend(sc for sc in vec_rows if sc.embed_key not in found)
                if have:
                    index.add_vectors([sc.id for sc in have], np.vstack([found[sc.embed_key] for sc in have]))
            kw_rows = [to_keyword_doc(sc) for sc in batch if sc.id in need_k]
            index.add_keywords(kw_rows)
        report["added"] = len(need_v | need_k)
        report["removed"] = len(set(stale_v) | set(stale_k))
        if durable:
            with self.meta.transaction() as con:
                MetadataStore.drop_pending(con)  # rows of chunks deleted since
                if lost:
                    MetadataStore.add_pending(con, [sc.id for sc in lost])
                    paths = sorted({sc.chunk.path for sc in lost})
                    for i in range(0, len(paths), 500):
                        part = paths[i : i + 500]
                        con.execute(f"DELETE FROM files WHERE path IN ({','.join('?' * len(part))})", part)
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
