"""Hybrid ranking: fuse dense and BM25 candidates, then apply code-aware adjustments.

Every adjustment is a config knob so ``bench/quality.py --set`` can switch it off; the
defaults and the measurements behind them are in ``bench/README.md`` (ablation table).

Two fusions: ``score`` (default) min-max normalizes each retriever's scores over its own
candidates and sums them with weights, so a clear winner in one retriever keeps its margin;
``rrf`` (reciprocal rank fusion) uses ranks only. A query that spells code (an identifier, a
dotted path, a call, backticks) weighs the keyword ranking more. Adjustments then multiply (prose,
module-level and test chunks) or add a share of the best score (a symbol the query names exactly).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from claude_context.index.base import Hit
from claude_context.index.keyword.tokens import code_tokens
from claude_context.index.truth.metadata import StoredChunk
from claude_context.search import boosts

DOC_KINDS = frozenset({"section", "text"})
LAYOUT_KINDS = frozenset({"module", "namespace"})


@dataclass(frozen=True, slots=True)
class RankSettings:
    fusion: str = "score"  # score | rrf
    rrf_k: int = 60
    dense_weight: float = 1.0
    static_weight: float = 0.5  # the static table's ranking of the chunks without vectors yet
    static_complete_weight: float = 0.25  # its ranking of every chunk (seeking; while indexing too)
    static_file_weight: float = 0.1  # share of the top score x the file's closeness by the table (seeking)
    keyword_weight: float = 0.6
    code_query_boost: float = 2.0  # keyword weight multiplier when the query spells code (getX, a.b, `x`)
    symbol_boost: float = 0.0  # share of the top score added when the query names the symbol
    doc_weight: float = 0.4  # multiplier for prose chunks (markdown sections, text windows)
    prose_doc_weight: float = 1.0  # the same for questions documentation answers (asks_for_prose)
    module_weight: float = 0.9  # multiplier for module-level code (imports, constants)
    test_weight: float = 0.3  # multiplier for test code, unless the query is about tests
    # file-level and query-type evidence (search/boosts.py)
    definition_boost: float = 3.0  # share of the top score added to a chunk defining a named symbol
    path_boost: float = 0.0  # share of the top score x share of query words naming the file/folder
    file_coherence: float = 0.05  # share of the top score added to a file's best chunk x file sum
    barrel_weight: float = 0.5  # __init__.py, package-info.java, index.d.ts: re-exports
    aside_weight: float = 0.3  # compat/, legacy/, examples/, vendor/, single_include/ copies
    stub_weight: float = 0.7  # .d.ts declaration stubs
    superseded_weight: float = 1.0  # v3/ beside a newer v4/ (boosts.superseded)
    saturation_free: int = 1  # chunks of one file before saturation decay starts
    saturation_decay: float = 1.0  # multiplier per further chunk of an already ranked file
    definition_embedded: float = 0.0  # definition boost share for names inside a sentence
    # the same file-level knobs for queries that seek files (boosts.seeks_files: questions, topics)
    seek_coherence: float = 0.3
    seek_path_boost: float = 0.0
    seek_saturation_decay: float = 0.5
    # the seek knobs when no chunk has a vector (keyword mode, a first index): chunk scores from
    # BM25 alone say less about topics, so file-level evidence weighs more (bench/README.md)
    keyword_seek_coherence: float = 0.6
    keyword_seek_path_boost: float = 0.5
    merge_gap: int = 15  # results.shape_results' merge gaps: saturation skips what will merge
    top_merge_gap: int = 50


def for_coverage(settings: RankSettings, coverage: float) -> RankSettings:
    """The knobs when only ``coverage`` (0-1) of the dense evidence exists: the dense weight
    follows it (full weight on a few vectors would give the best of them full marks), and the
    file-seeking knobs move from their hybrid values toward their keyword-only ones."""
    if coverage >= 1.0:
        return settings
    share = 1.0 - max(0.0, coverage)
    return dataclasses.replace(
        settings,
        dense_weight=settings.dense_weight * max(0.0, coverage),
        seek_coherence=settings.seek_coherence
        + share * (settings.keyword_seek_coherence - settings.seek_coherence),
        seek_path_boost=settings.seek_path_boost
        + share * (settings.keyword_seek_path_boost - settings.seek_path_boost),
    )


# An identifier the user typed as code: has an inner capital or an underscore (getUserName,
# get_user_name, HTTPServer), a call "(", a dot path (res.send), or sits in backticks.
_CODEISH = re.compile(r"`([^`\s]+)`|\b([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+|[A-Za-z_$][\w$]*)(\()?")


def named_symbols(query: str) -> set[str]:
    """Lower-cased identifiers that the query spells as code (not plain English words)."""
    out: set[str] = set()
    for m in _CODEISH.finditer(query):
        quoted, word, call = m.group(1), m.group(2), m.group(3)
        token = quoted or word or ""
        token = token.strip("()`:,;")
        if not token:
            continue
        is_code = bool(quoted or call or "." in token or "_" in token or re.search(r"[a-z][A-Z]", token))
        is_code = is_code or (token[:1].isupper() and any(c.isupper() for c in token[1:]))
        if is_code:
            out.add(token.lower())
            out.add(token.rsplit(".", 1)[-1].lower())
    return out


# Test code by the conventions of the common ecosystems: a tests/ (spec/, __tests__/, testing/)
# folder, or a test file name (test_x.py, x_test.py, x_test.go, x.test.ts, x.spec.js, XTest.java,
# XTests.cs, conftest.py).
_TEST_DIR = re.compile(r"(^|/)(tests?|__tests__|spec|specs|testing|testdata)/", re.IGNORECASE)
_TEST_FILE = re.compile(
    r"(^|/)(test_[^/]*|[^/]*_test\.\w+|[^/]*\.(test|spec)\.\w+|[^/]*Tests?\.(java|kt|cs|scala|swift)|conftest\.py)$"
)
_TEST_WORDS = frozenset(
    "test tests testing tested unittest pytest spec specs fixture fixtures mock mocks stub stubs".split()
)


# Words of questions that documentation answers rather than code (installing, upgrading, the
# changelog, contributing, security reports, licensing, FAQs, guides): prose keeps its weight.
_PROSE_WORDS = frozenset(
    "install installs installing installation installer upgrade upgrading changelog release "
    "contribute contributing contributors security vulnerability license faq tutorial guide".split()
)


def is_test_path(path: str) -> bool:
    """True for files that hold tests rather than the code under test."""
    return bool(_TEST_DIR.search(path) or _TEST_FILE.search(path))


def asks_for_tests(query: str) -> bool:
    """True when the query is about tests itself ("unit tests for X", TestFoo, test_bar, mocks)."""
    return not _TEST_WORDS.isdisjoint(code_tokens(query))


# A user's task rather than the code's workings ("how do I set it up with Claude Code", "how to
# run the test suite"); "how does X work" and "how do we retry uploads" ask about the code.
_HOW_DO_I = re.compile(r"\bhow\s+(?:(?:do|can|should|would)\s+i|to)\b", re.IGNORECASE)


def asks_for_prose(query: str) -> bool:
    """True when the query is one documentation answers ("how do I install X", "what changed in
    the 5.0 release", "how to report a security vulnerability"): prose is not weighed down."""
    return bool(_HOW_DO_I.search(query)) or not _PROSE_WORDS.isdisjoint(code_tokens(query))


def keyword_weight(query: str, settings: RankSettings) -> float:
    """The keyword ranking's weight for this query: more when the user typed code, where exact
    terms mean more than their paraphrases."""
    if settings.code_query_boost != 1.0 and named_symbols(query):
        return settings.keyword_weight * settings.code_query_boost
    return settings.keyword_weight


def _symbol_names(symbol: str) -> set[str]:
    names: set[str] = set()
    for part in symbol.split(", "):  # merged results carry several symbols
        if part:
            names.add(part.lower())
            names.add(re.split(r"[.:#]+", part)[-1].lower())
    return names


def _normalized(hits: Sequence[Hit], rows: dict[int, StoredChunk]) -> dict[int, float]:
    live = [h for h in hits if h.id in rows]
    if not live:
        return {}
    top, low = max(h.score for h in live), min(h.score for h in live)
    span = (top - low) or 1.0
    return {h.id: (h.score - low) / span for h in live}


def fuse(
    query: str,
    rankings: Sequence[tuple[str, Sequence[Hit]]],
    rows: dict[int, StoredChunk],
    settings: RankSettings,
) -> list[tuple[StoredChunk, float]]:
    """Fuse (retriever name, hits) lists into (chunk, score), best first.

    A ranking named ``fused`` is a backend's own hybrid result (Milvus ``hybrid_search``):
    its scores are used as they are.
    """
    weights = {
        "dense": settings.dense_weight,
        "static": settings.static_weight,
        "static_all": settings.static_complete_weight,
        "keyword": keyword_weight(query, settings),
    }
    scores: dict[int, float] = {}
    files: dict[int, float] = {}
    for name, hits in rankings:
        w = weights.get(name, 1.0)
        if name == "files":  # file-level evidence per candidate chunk: ``_adjust`` adds it
            files.update((h.id, h.score) for h in hits)
        elif name == "definitions":  # candidates by name only: the definition boost scores them
            for h in hits:
                if h.id in rows:
                    scores.setdefault(h.id, 0.0)
        elif name == "fused":
            for h in hits:
                if h.id in rows:
                    scores[h.id] = max(scores.get(h.id, 0.0), h.score)
        elif settings.fusion == "score":
            for cid, value in _normalized(hits, rows).items():
                scores[cid] = scores.get(cid, 0.0) + w * value
        else:
            rank = 0
            seen: set[int] = set()
            for h in hits:
                if h.id in seen or h.id not in rows:
                    continue
                seen.add(h.id)
                rank += 1
                scores[h.id] = scores.get(h.id, 0.0) + w / (settings.rrf_k + rank)
    if not scores:
        return []
    return _adjust(query, scores, rows, settings, files)


def _adjust(
    query: str,
    scores: dict[int, float],
    rows: dict[int, StoredChunk],
    settings: RankSettings,
    files: dict[int, float] | None = None,
) -> list[tuple[StoredChunk, float]]:
    """Query-type, file-level and path evidence on top of the fused scores; best first.
    ``files``: a 0-1 closeness of each candidate's file to the query (the "files" ranking)."""
    info = boosts.analyze(query)
    seeking = boosts.seeks_files(query, info)
    path_boost = settings.seek_path_boost if seeking else settings.path_boost
    decay = settings.seek_saturation_decay if seeking else settings.saturation_decay
    named = named_symbols(query) if settings.symbol_boost else set()
    best = max(scores.values())
    paths = {cid: rows[cid].chunk.path for cid in scores}
    test_weight = 1.0 if asks_for_tests(query) else settings.test_weight
    doc_weight = settings.prose_doc_weight if asks_for_prose(query) else settings.doc_weight
    definition = (
        settings.definition_boost * best * (1.0 if info.symbol_query else settings.definition_embedded)
    )
    path_words: dict[str, float] = {}
    for cid in list(scores):
        sc = rows[cid]
        kind = sc.chunk.kind
        score = scores[cid]
        if named and sc.chunk.symbol and named & _symbol_names(sc.chunk.symbol):
            score += settings.symbol_boost * best
        if definition and info.names and boosts.defines(kind, sc.chunk.symbol, sc.chunk.content, info.names):
            stem = boosts.split_path(sc.chunk.path)[0]
            tier = 1.5 if any(boosts.stem_matches(stem, n) for n in info.names) else 1.0
            score += definition * tier
        if path_boost and info.words:
            p = sc.chunk.path
            if p not in path_words:
                n = boosts.path_overlap(info.words, boosts.path_words(p))
                path_words[p] = n / len(info.words)
            score += path_boost * best * path_words[p]
        if kind in DOC_KINDS:
            score *= doc_weight
        elif kind in LAYOUT_KINDS:
            score *= settings.module_weight
        if test_weight != 1.0 and is_test_path(sc.chunk.path):
            score *= test_weight
        scores[cid] = score
    boosts.coherence(scores, paths, settings.seek_coherence if seeking else settings.file_coherence)
    if files:
        boosts.lift_files(scores, paths, files, settings.static_file_weight)
    old = boosts.superseded(paths.values(), query) if settings.superseded_weight != 1.0 else set()
    out: list[tuple[StoredChunk, float]] = []
    for cid, score in scores.items():
        prior = boosts.path_prior(
            paths[cid], settings.barrel_weight, settings.aside_weight, settings.stub_weight
        )
        if paths[cid] in old:
            prior *= settings.superseded_weight
        out.append((rows[cid], score * prior))
    out.sort(key=lambda item: (-item[1], item[0].id))
    if decay < 1.0:
        spans = [(sc.chunk.path, sc.chunk.start_line, sc.chunk.end_line) for sc, _ in out]
        gaps = (
            settings.top_merge_gap if settings.top_merge_gap >= 0 else settings.merge_gap,
            settings.merge_gap,
        )
        order = boosts.saturate(out, spans, settings.saturation_free, decay, gaps)
        out = [out[i] for i in order]
    return out
