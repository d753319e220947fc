"""Reciprocal rank fusion, in its one place: ``search.ranking.fuse`` with ``fusion = "rrf"``.

(Until the redesign of issue 16 a second RRF, ``index/fusion.rrf``, served Milvus's unequal-weight
case; Milvus now hands its rankings to the engine, which fuses them here.)
"""

import pytest

from claude_context.index.base import Hit
from claude_context.index.truth.metadata import StoredChunk
from claude_context.records import Chunk
from claude_context.search.ranking import RankSettings, fuse


def h(*ids: int) -> list[Hit]:
    return [Hit(i, 100.0 - n) for n, i in enumerate(ids)]


def rows(*ids: int) -> dict[int, StoredChunk]:
    chunk = {i: Chunk(f"src/f{i}.py", "python", 1, 2, f"f{i}", "function", "x") for i in ids}
    return {i: StoredChunk(i, chunk[i], "k") for i in ids}


def rrf(rankings, weights=(1.0, 1.0), k: int = 60) -> list[tuple[int, float]]:
    """(id, score) best first: ``rankings`` as the dense and the keyword retriever."""
    named = list(zip(("dense", "keyword"), rankings, strict=False))
    ids = {hit.id for r in rankings for hit in r}
    settings = RankSettings(
        fusion="rrf",
        rrf_k=k,
        dense_weight=weights[0],
        keyword_weight=weights[1],
        code_query_boost=1.0,
        file_coherence=0.0,  # file-level evidence is a later stage (test_file_ranking.py)
        seek_coherence=0.0,
        seek_saturation_decay=1.0,
    )
    return [(sc.id, score) for sc, score in fuse("q", named, rows(*ids), settings)]


def test_scores_are_reciprocal_ranks_from_one() -> None:
    out = rrf([h(7, 8)], k=60)
    assert [i for i, _ in out] == [7, 8]
    assert out[0][1] == pytest.approx(1 / 61)
    assert out[1][1] == pytest.approx(1 / 62)


def test_sums_across_rankings_and_ignores_input_scores() -> None:
    a = [Hit(1, 0.99), Hit(2, 0.98), Hit(3, 0.5)]
    b = [Hit(3, 40.0), Hit(2, 30.0), Hit(9, 1.0)]
    out = rrf([a, b], k=60)
    by_id = dict(out)
    assert by_id[2] == pytest.approx(2 / 62)
    assert by_id[3] == pytest.approx(1 / 63 + 1 / 61)
    assert by_id[1] == pytest.approx(1 / 61)
    assert by_id[9] == pytest.approx(1 / 63)
    assert [i for i, _ in out] == [3, 2, 1, 9]  # 1/61+1/63 > 2/62 by convexity


def test_weights_change_the_winner() -> None:
    a, b = h(1, 2), h(2, 1)
    assert rrf([a, b], weights=(2.0, 1.0))[0][0] == 1
    assert rrf([a, b], weights=(1.0, 2.0))[0][0] == 2
    assert rrf([a, b], weights=(0.5, 0.5))[0][1] == pytest.approx(0.5 / 61 + 0.5 / 62)


def test_zero_weight_ranking_adds_nothing() -> None:
    out = rrf([h(1), h(2, 3)], weights=(1.0, 0.0))
    assert out[0] == (1, pytest.approx(1 / 61))
    assert all(score == 0.0 for i, score in out if i != 1)


def test_ties_break_by_id() -> None:
    # k=0: id 6 and id 7 are rank 1 in one list each (score 1), id 8 is rank 2 in both (1/2 + 1/2).
    out = rrf([[Hit(7, 1), Hit(8, 0)], [Hit(6, 1), Hit(8, 0)]], k=0)
    assert [s for _, s in out] == [1.0, 1.0, 1.0]
    assert [i for i, _ in out] == [6, 7, 8]
    # Equal scores fall back to id order, whatever the input order.
    assert [i for i, _ in rrf([h(9), h(3)])] == [3, 9]
    assert [i for i, _ in rrf([h(3), h(9)])] == [3, 9]


def test_duplicate_ids_within_a_ranking_count_once() -> None:
    # the second copy takes no rank: 2 is the second distinct id
    out = rrf([[Hit(1, 1), Hit(1, 1), Hit(2, 1)]], k=60)
    assert dict(out) == {1: pytest.approx(1 / 61), 2: pytest.approx(1 / 62)}


def test_empty_input() -> None:
    assert rrf([]) == []
    assert rrf([[], []]) == []
