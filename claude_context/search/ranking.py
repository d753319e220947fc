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

import re
from collections.abc import Sequence
from dataclasses import dataclass

from claude_context.index.base import Hit
from claude_context.index.keyword.tokens import code_tokens
from claude_context.index.truth.metadata import StoredChunk

DOC_KINDS = frozenset({"section", "text"})
LAYOUT_KINDS = frozenset({"module", "namespace"})


@dataclass(frozen=True, slots=True)
class RankSettings:
    fusion: str = "score"  # score | rrf
    rrf_k: int = 60
    dense_weight: float = 1.0
    keyword_weight: float = 0.6
    code_query_boost: float = 2.0  # keyword weight multiplier when the query spells code (getX, a.b, `x`)
    symbol_boost: float = 0.0  # share of the top score added when the query names the symbol
    doc_weight: float = 0.8  # multiplier for prose chunks (markdown sections, text windows)
    module_weight: float = 0.9  # multiplier for module-level code (imports, constants)
    test_weight: float = 0.5  # multiplier for test code, unless the query is about tests


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


def is_test_path(path: str) -> bool:
    """True for files that hold tests rather than the code under test."""
    return bool(_TEST_DIR.search(path) or _TEST_FILE.search(path))


def asks_for_tests(query: str) -> bool:
    """True when the query is about tests itself ("unit tests for X", TestFoo, test_bar, mocks)."""
    return not _TEST_WORDS.isdisjoint(code_tokens(query))


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
    weights = {"dense": settings.dense_weight, "keyword": keyword_weight(query, settings)}
    scores: dict[int, float] = {}
    for name, hits in rankings:
        w = weights.get(name, 1.0)
        if name == "fused":
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
    named = named_symbols(query) if settings.symbol_boost else set()
    best = max(scores.values())
    test_weight = 1.0 if asks_for_tests(query) else settings.test_weight
    out: list[tuple[StoredChunk, float]] = []
    for cid, score in scores.items():
        sc = rows[cid]
        kind = sc.chunk.kind
        if named and sc.chunk.symbol and named & _symbol_names(sc.chunk.symbol):
            score += settings.symbol_boost * best
        if kind in DOC_KINDS:
            score *= settings.doc_weight
        elif kind in LAYOUT_KINDS:
            score *= settings.module_weight
        if test_weight != 1.0 and is_test_path(sc.chunk.path):
            score *= test_weight
        out.append((sc, score))
    out.sort(key=lambda item: (-item[1], item[0].id))
    return out
