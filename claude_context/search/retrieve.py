"""Each retriever's ranking for one query, searched in the codebase's index backend.

Score fusion (the default) takes every retriever's own ranking and fuses them in ``ranking.fuse``.
With RRF a backend that fuses natively (Milvus's ``RRFRanker``, equal weights) returns one "fused"
ranking; otherwise the engine fuses the rankings itself, so RRF lives in one place.
"""

from __future__ import annotations

import numpy as np

from claude_context.index.base import ChunkIndex, Hit
from claude_context.index.truth.metadata import MetadataStore
from claude_context.records import SearchFilter
from claude_context.search import boosts
from claude_context.search.ranking import RankSettings, keyword_weight

NATIVE_NAMES = {"hybrid": "fused", "semantic": "dense", "keyword": "keyword"}


def retrieve(
    index: ChunkIndex,
    meta: MetadataStore,
    query: str,
    qvec: np.ndarray | None,
    mode: str,
    scope: set[str] | None,
    filters: SearchFilter,
    settings: RankSettings,
    k: int,
) -> list[tuple[str, list[Hit]]]:
    """(retriever name, hits) lists for ``ranking.fuse``; ``qvec`` is None in keyword mode."""
    rankings = _retrieve(index, meta, query, qvec, mode, scope, filters, settings, k)
    info = boosts.analyze(query)
    if (
        settings.definition_boost
        and settings.fusion != "rrf"
        and (info.symbol_query or settings.definition_embedded)
    ):
        found = definitions(meta, query, scope)
        if found:
            rankings.append(("definitions", found))
    return rankings


def definitions(meta: MetadataStore, query: str, scope: set[str] | None, limit: int = 20) -> list[Hit]:
    """Chunks defining a symbol the query names, candidates or not (score 0: ``fuse`` boosts
    them), so a definition neither retriever ranked still comes first."""
    names = boosts.analyze(query).names
    if not names:
        return []
    rows = meta.definitions_named(sorted({n.rsplit(".", 1)[-1] for n in names}), limit)
    return [Hit(cid, 0.0) for cid, path in rows if scope is None or path in scope]


def _retrieve(
    index: ChunkIndex,
    meta: MetadataStore,
    query: str,
    qvec: np.ndarray | None,
    mode: str,
    scope: set[str] | None,
    filters: SearchFilter,
    settings: RankSettings,
    k: int,
) -> list[tuple[str, list[Hit]]]:
    text = query if mode in {"hybrid", "keyword"} else None
    if settings.fusion == "rrf":
        weights = (settings.dense_weight, keyword_weight(query, settings))
        native = index.search_hybrid(
            text, qvec, k, scope, filters, rrf_k=settings.rrf_k, weights=weights, fusion="rrf"
        )
        if native is not None:
            return [(NATIVE_NAMES[mode], native)]
    own = index.search_rankings(text, qvec, k, scope, filters)
    if own is not None:
        return list(own)
    rankings: list[tuple[str, list[Hit]]] = []
    allowed_ids = set(meta.chunk_ids_for_paths(scope)) if scope is not None else None
    if qvec is not None:
        rankings.append(("dense", index.search_dense(qvec, k, allowed_ids)))
    if text is not None:
        rankings.append(("keyword", index.search_keyword(query, k, scope)))
    return rankings
