"""Reciprocal rank fusion: combines rankings whose scores live on different scales (BM25, cosine)."""

from __future__ import annotations

from collections.abc import Sequence

from claude_context.index.base import Hit


def rrf(rankings: Sequence[Sequence[Hit]], weights: Sequence[float] | None = None, k: int = 60) -> list[Hit]:
    """Weighted RRF: ``score(id) = sum_i w_i / (k + rank_i(id))`` with ranks starting at 1.

    Only ranks matter, never the input scores, which is why BM25 and cosine can be mixed.
    Within one ranking only an id's first (best) occurrence counts. A ranking with weight 0
    contributes nothing, not even its ids. Ties are broken by the best rank the id reached in
    any contributing ranking, then by id, so the output is deterministic.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    scores: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        if not w:
            continue
        seen: set[int] = set()
        for rank, hit in enumerate(ranking, start=1):
            if hit.id in seen:
                continue
            seen.add(hit.id)
            scores[hit.id] = scores.get(hit.id, 0.0) + w / (k + rank)
            if rank < best_rank.get(hit.id, rank + 1):
                best_rank[hit.id] = rank
    # Rounded so sums that are equal in exact arithmetic but differ in the last bit (different
    # addition order) still count as ties.
    order = sorted(scores, key=lambda i: (-round(scores[i], 12), best_rank[i], i))
    return [Hit(i, scores[i]) for i in order]
