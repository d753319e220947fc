"""The shipped query adapter: what it is, when it applies, and that search still works with it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from claude_context.config import DEFAULT_MODEL
from claude_context.search.query_adapter import QueryAdapter, adapter_for, load


def test_shipped_adapter_is_a_small_correction_for_the_default_model():
    adapter = adapter_for(DEFAULT_MODEL)
    assert adapter is not None
    assert adapter.weight.shape == (384, 384) and adapter.bias.shape == (384,)
    assert adapter.weight.dtype == np.float32
    assert adapter.info["model"] == DEFAULT_MODEL
    assert len(adapter.info["sets"]) >= 10  # fitted on many corpora, not one
    # pulled toward the identity: a correction of the model's space, not a new space
    drift = np.linalg.norm(adapter.weight - np.eye(384)) / np.linalg.norm(np.eye(384))
    assert 0.01 < drift < 0.5, drift


def test_adapter_only_for_the_model_it_was_fitted_on():
    assert adapter_for("sentence-transformers/" + DEFAULT_MODEL) is adapter_for(DEFAULT_MODEL)
    assert adapter_for("default") is adapter_for(DEFAULT_MODEL)
    assert adapter_for("BAAI/bge-small-en-v1.5") is None
    assert adapter_for("/models/my-local-model") is None


def test_apply_normalizes_and_leaves_other_sizes_alone(model):
    adapter = adapter_for(DEFAULT_MODEL)
    raw = model.embed_query("Writes a usage line into the buffer.")
    out = adapter.apply(raw)
    assert out.dtype == np.float32 and out.shape == raw.shape
    assert abs(float(np.linalg.norm(out)) - 1.0) < 1e-5
    cos = float(np.dot(out, raw))
    assert 0.8 < cos < 0.9999, cos  # it moves the query, but keeps what the question says
    other = np.ones(768, dtype=np.float32)
    assert adapter.apply(other) is not None and np.array_equal(adapter.apply(other), other)


def test_load_rejects_mismatched_shapes(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(
        bad, W=np.eye(4, dtype=np.float32), b=np.zeros(3, dtype=np.float32), info=np.array(json.dumps({}))
    )
    with pytest.raises(ValueError, match="do not match"):
        load(bad)
    good = tmp_path / "good.npz"
    np.savez(good, W=np.eye(3, dtype=np.float32), b=np.zeros(3, dtype=np.float32), info=np.array("{}"))
    a = load(good)
    assert isinstance(a, QueryAdapter) and a.dim == 3
    v = np.array([3.0, 4.0, 0.0], dtype=np.float32)
    assert np.allclose(a.apply(v), [0.6, 0.8, 0.0])  # identity map: only normalized


def test_search_uses_the_adapter_unless_switched_off(engine, repo, expected):
    engine.index(repo)
    query = expected[0]["query"]
    adapted = engine.resolve(repo)[0].embed_query(query)
    raw = engine.embedder().embed_query(query)
    assert not np.allclose(adapted, raw)
    assert np.allclose(adapted, adapter_for(DEFAULT_MODEL).apply(raw))
    on = engine.search(repo, query, mode="semantic", limit=3).results
    engine.config = engine.config.replace(query_adapter=False)
    assert np.allclose(engine.resolve(repo)[0].embed_query(query), raw)
    off = engine.search(repo, query, mode="semantic", limit=3).results
    assert [r.score for r in on] != [r.score for r in off]  # a different query vector scored them


def test_adapted_semantic_search_keeps_hand_written_questions_first(engine, repo, expected):
    """The fixture's questions are written by hand, not doc comments like the adapter's training
    pairs: semantic search alone must still put the right definition first for nearly all."""
    engine.index(repo)
    first = 0
    for case in expected:
        results = engine.search(repo, case["query"], mode="semantic", limit=5).results
        found = [i for i, r in enumerate(results) if r.path == case["path"] and case["symbol"] in r.symbol]
        first += bool(found and found[0] == 0)
    assert first >= len(expected) - 1, first
