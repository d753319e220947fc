import pytest

from claude_context.index.base import Hit
from claude_context.index.fusion import rrf


def h(*ids: int) -> list[Hit]:
    return [Hit(i, 100.0 - n) for n, i in enumerate(ids)]


def test_scores_are_reciprocal_ranks_from_one() -> None:
    out = rrf([h(7, 8)], k=60)
    assert [x.id for x in out] == [7, 8]
    assert out[0].score == pytest.approx(1 / 61)
    assert out[1].score == pytest.approx(1 / 62)


def test_sums_across_rankings_and_ignores_input_scores() -> None:
    a = [Hit(1, 0.99), Hit(2, 0.98), Hit(3, 0.5)]
    b = [Hit(3, 40.0), Hit(2, 30.0), Hit(9, 1.0)]
    out = rrf([a, b], k=60)
    by_id = {x.id: x.score for x in out}
    assert by_id[2] == pytest.approx(2 / 62)
    assert by_id[3] == pytest.approx(1 / 63 + 1 / 61)
    assert by_id[1] == pytest.approx(1 / 61)
    assert by_id[9] == pytest.approx(1 / 63)
    assert [x.id for x in out] == [3, 2, 1, 9]  # 1/61+1/63 > 2/62 by convexity


def test_weights_change_the_winner() -> None:
    a, b = h(1, 2), h(2, 1)
    assert rrf([a, b], weights=[2.0, 1.0])[0].id == 1
    assert rrf([a, b], weights=[1.0, 2.0])[0].id == 2
    assert rrf([a, b], weights=[0.5, 0.5])[0].score == pytest.approx(0.5 / 61 + 0.5 / 62)


def test_zero_weight_ranking_contributes_nothing() -> None:
    out = rrf([h(1), h(2, 3)], weights=[1.0, 0.0])
    assert [x.id for x in out] == [1]


def test_ties_break_by_best_rank_then_id() -> None:
    # k=0: id 6 and id 7 are rank 1 in one list each (score 1), id 8 is rank 2 in both (1/2 + 1/2).
    out = rrf([[Hit(7, 1), Hit(8, 0)], [Hit(6, 1), Hit(8, 0)]], k=0)
    assert [x.score for x in out] == [1.0, 1.0, 1.0]
    assert [x.id for x in out] == [6, 7, 8]  # best rank 1 before best rank 2; then by id
    # Equal score and best rank fall back to id order, whatever the input order.
    assert [x.id for x in rrf([h(9), h(3)])] == [3, 9]
    assert [x.id for x in rrf([h(3), h(9)])] == [3, 9]
    # 50 ranks (1, 3) and 40 ranks (3, 1): same score, same best rank -> id; 60 ranks (2, 2) is lower.
    out = rrf([h(50, 60, 40), h(40, 60, 50)])
    assert [x.id for x in out] == [40, 50, 60]
    assert out[0].score == out[1].score > out[2].score


def test_duplicate_ids_within_a_ranking_count_once() -> None:
    out = rrf([[Hit(1, 1), Hit(1, 1), Hit(2, 1)]], k=60)
    assert {x.id: x.score for x in out} == {1: pytest.approx(1 / 61), 2: pytest.approx(1 / 63)}


def test_empty_and_bad_input() -> None:
    assert rrf([]) == []
    assert rrf([[], []]) == []
    with pytest.raises(ValueError):
        rrf([h(1)], weights=[1.0, 2.0])
