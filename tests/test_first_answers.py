"""What serves the first questions on a cold index: the embed order and keyword answers while no
vector exists yet (measured by bench/ttq_bench.py; these pin the behaviour)."""

from __future__ import annotations

from pathlib import Path

from claude_context.pipeline import embed_rank
from claude_context.records import FileEntry
from claude_context.reports import CodebaseStatus
from claude_context.searching import _wants_vector


def _entry(path: str) -> FileEntry:
    return FileEntry(path=path, abs_path=Path("/r") / path, size=10, mtime_ns=0)


def test_source_is_embedded_before_docs_examples_and_tests() -> None:
    paths = [
        "tests/test_app.py",
        "README.md",
        "examples/hello.py",
        "pkg/app_test.go",
        "src/app.py",
        "docs/guide.rst",
        "pkg/app.go",
        "benchmarks/run.py",
    ]
    ordered = [e.path for e in sorted(map(_entry, paths), key=embed_rank)]
    assert ordered == [
        "src/app.py",
        "pkg/app.go",
        "README.md",
        "docs/guide.rst",
        "examples/hello.py",
        "benchmarks/run.py",
        "tests/test_app.py",
        "pkg/app_test.go",
    ]


def test_hybrid_search_does_not_wait_for_the_model_before_any_vector_exists() -> None:
    def st(status: str, coverage: float, chunks: int = 100) -> CodebaseStatus:
        return CodebaseStatus(root="/r", status=status, chunks=chunks, semantic_coverage=coverage)

    assert not _wants_vector("hybrid", st("indexing", 0.0))  # keywords only, at once
    assert not _wants_vector("hybrid", st("indexing", 1.0, chunks=0))  # nothing staged yet
    assert _wants_vector("hybrid", st("indexing", 0.2))  # some vectors: use them
    assert _wants_vector("hybrid", st("indexed", 1.0))
    assert _wants_vector("semantic", st("indexing", 0.0))  # asked for explicitly
    assert not _wants_vector("keyword", st("indexed", 1.0))


def test_a_search_during_the_first_seconds_answers_from_keywords(engine, repo: Path, monkeypatch) -> None:
    """While a first index has staged keywords but no vectors, hybrid search answers without the
    model (here: a model that would fail the test if asked)."""
    engine.index(repo)
    cb, _ = engine.resolve(repo)
    status = engine.status(repo)
    monkeypatch.setattr(type(engine), "status_of", lambda self, c: _indexing(status))

    def no_model(self, query: str):
        raise AssertionError("the query was embedded")

    monkeypatch.setattr(type(cb), "embed_query", no_model)
    resp = engine.search(repo, "parse a semantic version string", limit=3)
    assert resp.results and resp.results[0].path == "crates/semver/src/lib.rs"
    assert resp.partial and resp.semantic_coverage == 0.0


def _indexing(st: CodebaseStatus) -> CodebaseStatus:
    st.status, st.semantic_coverage = "indexing", 0.0
    return st


def test_partial_coverage_weighs_the_dense_ranking_by_its_coverage(engine, repo: Path, monkeypatch) -> None:
    """With 40% of the chunks embedded, the dense ranking counts 40% of its configured weight (its
    min-max normalisation would otherwise give the best embedded chunk full marks)."""
    import claude_context.searching as engine_module  # the search entry point (issue 18)

    engine.index(repo)
    status = engine.status(repo)
    status.status, status.semantic_coverage = "indexing", 0.4
    monkeypatch.setattr(type(engine), "status_of", lambda self, c: status)
    seen = []
    real_fuse = engine_module.fuse
    monkeypatch.setattr(
        engine_module, "fuse", lambda q, r, rows, s: seen.append(s) or real_fuse(q, r, rows, s)
    )
    engine.search(repo, "parse a semantic version string", limit=3)
    assert seen and abs(seen[0].dense_weight - 0.4 * engine.config.dense_weight) < 1e-9


def test_semantic_coverage_stays_true_while_a_cold_index_runs(cold_engine, repo: Path) -> None:
    """Status during a first index: coverage always within [0, 1] and pending never above chunks
    (the two counts come from one snapshot while staging writes both)."""
    job, _ = cold_engine.start_index(repo)
    seen = []
    while job.running:
        st = cold_engine.status(repo)
        assert 0.0 <= st.semantic_coverage <= 1.0 and st.chunks_pending <= st.chunks, st
        seen.append(st.semantic_coverage)
    assert job.error is None
    assert cold_engine.status(repo).semantic_coverage == 1.0
    assert seen  # it was polled while running
