"""The local chunk index: a vector index (hnswlib by default) beside a tantivy BM25 index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from claude_context.index.base import ChunkIndex, Hit, KeywordDoc, KeywordIndex, VectorIndex


class LocalChunkIndex(ChunkIndex):
    kind = "local"

    def __init__(self, vectors: VectorIndex, keywords: KeywordIndex) -> None:
        self.vectors = vectors
        self.keywords = keywords

    def add(self, docs: Sequence[KeywordDoc], vectors: np.ndarray) -> None:
        if not docs:
            return
        self.vectors.add([d.id for d in docs], vectors)
        self.keywords.add(docs)

    def delete(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        self.vectors.delete(ids)
        self.keywords.delete(ids)

    def commit(self, generation: int, durable: bool = False) -> None:
        self.keywords.commit(generation)
        if durable:
            self.vectors.save(generation)

    def generation(self) -> int | None:
        gens = (self.vectors.saved_generation(), self.keywords.committed_generation())
        if None in gens or gens[0] != gens[1]:
            return None
        return gens[0]

    def generations(self) -> tuple[int | None, int | None]:
        return self.vectors.saved_generation(), self.keywords.committed_generation()

    def ids(self) -> tuple[set[int], set[int]]:
        return self.vectors.ids(), self.keywords.ids()

    def add_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        if len(ids):
            self.vectors.add(ids, vectors)

    def add_keywords(self, docs: Sequence[KeywordDoc]) -> None:
        if docs:
            self.keywords.add(docs)

    def delete_vectors(self, ids: Sequence[int]) -> None:
        if ids:
            self.vectors.delete(ids)

    def delete_keywords(self, ids: Sequence[int]) -> None:
        if ids:
            self.keywords.delete(ids)

    def search_dense(self, vector: np.ndarray, k: int, allowed_ids: set[int] | None) -> list[Hit]:
        return self.vectors.search(vector, k, allowed_ids)

    def search_keyword(self, query: str, k: int, allowed_paths: set[str] | None) -> list[Hit]:
        return self.keywords.search(query, k, allowed_paths)

    def stats(self) -> dict[str, object]:
        details = getattr(self.vectors, "details", None)
        return {
            "vector_index": self.vectors.kind,
            "vectors": self.vectors.count(),
            "vector_index_bytes": self.vectors.resident_bytes(),
            "keyword_docs": self.keywords.count(),
            # quantized indexes say how they currently search (exact while small, IVF, ...)
            **({"vector_index_details": details()} if callable(details) else {}),
        }

    def release_writer(self) -> None:
        release = getattr(self.keywords, "release_writer", None)
        if release is not None:
            release()

    def close(self) -> None:
        self.vectors.close()
        self.keywords.close()
