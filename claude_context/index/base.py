"""Narrow interfaces every index backend implements.

Shaped after txtai's ``ann`` backends: one small class per backend, a factory picks it. The
vector index (hnswlib, int8, RaBitQ, later Milvus) and the keyword index (tantivy) only hold
derived data: SQLite is the source of truth, so any of them can be thrown away and rebuilt
from it without re-embedding.

Ids are the SQLite chunk ids (positive 63-bit integers).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from claude_context.records import SearchFilter


@dataclass(frozen=True, slots=True)
class Hit:
    id: int
    score: float  # higher is better; scale depends on the index (cosine, BM25, fused)


@dataclass(frozen=True, slots=True)
class KeywordDoc:
    """What the keyword index needs of a chunk."""

    id: int
    path: str
    symbol: str
    content: str
    context: str = ""
    # Descriptive fields a remote store keeps beside the text (the local BM25 index ignores them).
    language: str = ""
    kind: str = ""
    start_line: int = 0
    end_line: int = 0
    # (tokenizer, body, meta) token texts computed ahead, in a chunk worker process (``token_texts``)
    tokens: tuple[str, str, str] | None = None


class VectorIndex(ABC):
    """Approximate or exact nearest-neighbour search over normalized vectors (inner product)."""

    kind: str = "base"

    @abstractmethod
    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Insert or replace vectors (float32, shape (n, dim), L2-normalized)."""

    @abstractmethod
    def delete(self, ids: Iterable[int]) -> None:
        """Remove ids; unknown ids are ignored."""

    @abstractmethod
    def search(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[Hit]:
        """Top-k by inner product, best first; ``allowed`` restricts results to those ids."""

    @abstractmethod
    def ids(self) -> set[int]:
        """Every id currently searchable (used to detect drift from SQLite)."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def save(self, generation: int) -> None:
        """Persist atomically, stamped with the store generation it reflects."""

    @abstractmethod
    def saved_generation(self) -> int | None:
        """Generation stamped by the last ``save`` that was loaded, or None if nothing on disk."""

    def resident_bytes(self) -> int:
        """Approximate bytes held in memory by the index."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


class KeywordIndex(ABC):
    """BM25 full-text search over chunk text with code-aware tokenization."""

    @abstractmethod
    def add(self, docs: Sequence[KeywordDoc]) -> None: ...

    @abstractmethod
    def delete(self, ids: Iterable[int]) -> None: ...

    @abstractmethod
    def commit(self, generation: int) -> None:
        """Make all adds/deletes visible to new searches atomically, stamped with ``generation``."""

    @abstractmethod
    def committed_generation(self) -> int | None: ...

    @abstractmethod
    def search(self, query: str, k: int, allowed_paths: set[str] | None = None) -> list[Hit]:
        """Top-k by BM25; never raises on odd query text (it is not a query language)."""

    @abstractmethod
    def ids(self) -> set[int]: ...

    @abstractmethod
    def count(self) -> int: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


class ChunkIndex(ABC):
    """The searchable, derived copy of one codebase's chunks.

    This is the seam a remote backend (Milvus) implements; the local one composes a
    ``VectorIndex`` and a ``KeywordIndex``. SQLite stays the source of truth either way.
    """

    kind: str = "base"
    #: True: a reader process patches its own in-memory copy from SQLite (``CodebaseStore.repair``).
    #: False: the index is shared (a server) and only the writer changes it.
    reader_patches: bool = True

    @abstractmethod
    def add(self, docs: Sequence[KeywordDoc], vectors: np.ndarray) -> None:
        """Insert chunks (ids are new) with their normalized vectors, row-aligned."""

    @abstractmethod
    def delete(self, ids: Sequence[int]) -> None: ...

    @abstractmethod
    def commit(self, generation: int, durable: bool = False) -> None:
        """Make pending changes visible to searches; ``durable`` also persists everything to disk."""

    @abstractmethod
    def generation(self) -> int | None:
        """Generation of the last durable commit found on disk (None: nothing usable on disk)."""

    @abstractmethod
    def ids(self) -> tuple[set[int], set[int]]:
        """(ids in the vector index, ids in the keyword index): used to repair drift."""

    @abstractmethod
    def add_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Repair path: (re)insert vectors only."""

    @abstractmethod
    def add_keywords(self, docs: Sequence[KeywordDoc]) -> None:
        """Repair path: (re)insert keyword documents only."""

    @abstractmethod
    def delete_vectors(self, ids: Sequence[int]) -> None: ...

    @abstractmethod
    def delete_keywords(self, ids: Sequence[int]) -> None: ...

    @abstractmethod
    def search_dense(self, vector: np.ndarray, k: int, allowed_ids: set[int] | None) -> list[Hit]: ...

    @abstractmethod
    def search_keyword(self, query: str, k: int, allowed_paths: set[str] | None) -> list[Hit]: ...

    def search_hybrid(
        self,
        query: str | None,
        vector: np.ndarray | None,
        k: int,
        allowed_paths: set[str] | None,
        filters: SearchFilter | None = None,
        *,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
        fusion: str = "rrf",
    ) -> list[Hit] | None:
        """Search in the backend itself: ``vector`` only = semantic, ``query`` only = keyword, both =
        hybrid fused by ``fusion`` ("score": weighted normalized scores, "rrf": reciprocal rank;
        ``weights`` = dense, keyword). ``allowed_paths`` is the scope
        the engine resolved from ``filters``. None = not supported: the engine calls
        ``search_dense``/``search_keyword`` and fuses the rankings itself."""
        return None

    def search_rankings(
        self,
        query: str | None,
        vector: np.ndarray | None,
        k: int,
        allowed_paths: set[str] | None,
        filters: SearchFilter | None = None,
    ) -> list[tuple[str, list[Hit]]] | None:
        """Each retriever's own ranking ("dense", "keyword"), raw scores, searched in the backend
        with its own filters, for the engine to fuse exactly as it fuses the local indexes (score
        fusion). None = not supported: the engine uses ``search_hybrid`` or the fallbacks."""
        return None

    def drop(self) -> None:  # noqa: B027 - optional hook
        """Delete data kept outside the codebase folder (a remote collection); the folder itself is
        removed by the caller."""

    def stats(self) -> dict[str, object]:
        return {}

    def release_writer(self) -> None:  # noqa: B027 - optional hook
        """Give up process-held write handles (e.g. tantivy's writer lock) when this process stops
        being the codebase's writer, so the next writer (maybe another process) can open its own."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
