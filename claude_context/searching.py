"""The search entry point behind ``Engine.search``: one codebase, several, or all of them.

Per codebase: scope from the filters, the query's vector, each retriever's ranking
(``search/retrieve.py``); several codebases' rankings are pooled (``search/multi.py``) and fused
once; then results are merged, paged and fitted to the token budget (``search/results.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from claude_context.config import MAX_LIMIT, MAX_OFFSET, Config, SearchMode, choice
from claude_context.embedding.static import ranks_complete, vectors_for
from claude_context.errors import NotIndexedError, UserError
from claude_context.index.base import Hit
from claude_context.records import SearchFilter
from claude_context.reports import CodebaseStatus, semantic_note
from claude_context.search import boosts
from claude_context.search.centrality import file_centrality
from claude_context.search.multi import page_results, pool, pooled_line_source, split_roots
from claude_context.search.ranking import RankSettings, for_coverage, fuse
from claude_context.search.results import SearchResponse, SearchResult, shape_results
from claude_context.search.retrieve import retrieve
from claude_context.search.scope import resolve_scope

if TYPE_CHECKING:
    from claude_context.codebase import Codebase
    from claude_context.engine import Engine

UNBOUNDED_TOKENS = 10**9  # results are shaped first, then the page gets the budget
STATIC_BACKFILL = 5000  # unseen pending chunks a search queues for static vectors, at most
STATIC_SYNC = 3000  # chunks a search encodes itself for the complete static ranking (~1 ms each)
STATIC_RANKED = 50  # its best chunks handed to fusion (measured: 50, 100 and 200 score alike)
_STATIC_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
log = logging.getLogger(__name__)


def run_search(
    engine: Engine,
    path: str | Path | Sequence[str | Path] | None,
    query: str,
    *,
    limit: int = 10,
    mode: str | None = None,
    filters: SearchFilter | None = None,
    token_budget: int | None = None,
    offset: int = 0,
) -> SearchResponse:
    """One page of results for ``query``: ``path`` is a codebase (or a folder inside one), a list
    of them, or None for every indexed codebase; several are ranked as one (``search/multi.py``)
    and each result names its root. ``offset`` skips that many results (pagination)."""
    t0 = time.perf_counter()
    mode = choice(SearchMode, mode or engine.config.search_mode, "mode")
    if not query or not query.strip():
        raise UserError("query is empty")
    if limit < 1 or limit > MAX_LIMIT:
        raise UserError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if offset < 0 or offset > MAX_OFFSET:
        raise UserError(f"offset must be between 0 and {MAX_OFFSET}, not {offset}")
    targets = search_targets(engine, path)
    single = len(targets) == 1
    response = SearchResponse(root=str(targets[0][0].root) if single else "", query=query, mode=mode)
    response.subfolder = targets[0][1] if single else ""
    response.roots = [str(cb.root) for cb, _ in targets]
    settings = engine.rank_settings()
    k = max((offset + limit) * 5, candidates(engine.config, query))
    parts, sources, roots, dense = [], [], [], []
    for cb, sub in targets:
        part = _retrieve(engine, cb, sub, query, mode, filters, settings, k, response, single)
        if part is not None:
            parts.append(part[:2])
            dense.append(part[2])
            sources.append(cb.line_source())
            roots.append(str(cb.root))
    if parts:
        settings = for_coverage(settings, dense_share(dense))
        rankings, rows = parts[0] if len(parts) == 1 else pool(parts)
        source = sources[0] if len(parts) == 1 else pooled_line_source(sources)
        shaped, more = _shape(engine, fuse(query, rankings, rows, settings), offset + limit, source)
        if len(parts) == 1:
            for r in shaped:
                r.root = roots[0]
        else:
            split_roots(shaped, roots)
        response.results, page = page_results(
            shaped, offset, limit, more, token_budget or engine.config.token_budget
        )
        response.truncated, response.offset = page.truncated, offset
        response.next_offset, response.has_more = page.next_offset, page.has_more
        if page.note:
            response.note = page.note
    response.took_ms = round((time.perf_counter() - t0) * 1000, 2)
    return response


def dense_share(shares: list[float]) -> float:
    """The pooled dense share of several codebases' (``_retrieve``): the least among those with a
    dense ranking (a partly embedded one weighs all pooled dense scores down), 0 when none has one.
    A codebase with no vector yet adds no dense ranking, so it does not silence the others'."""
    ranked = [s for s in shares if s > 0.0]
    return min(ranked) if ranked else 0.0


def _seeks_files(query: str) -> bool:
    return boosts.seeks_files(query, boosts.analyze(query))


def candidates(config: Config, query: str) -> int:
    """How many chunks each retriever hands to fusion: a question or topic phrase (one that seeks
    files) gets a wider pool, since its file-level evidence sums every matching chunk of a file;
    a doc sentence or an identifier keeps the narrow one that chunk precision was measured with."""
    return config.seek_candidates if _seeks_files(query) else config.candidates


def search_targets(
    engine: Engine, path: str | Path | Sequence[str | Path] | None
) -> list[tuple[Codebase, str]]:
    """The (codebase, subfolder) pairs a search covers: one path, several (each must be
    indexed: an unknown one is named in the error), or every indexed codebase (None / [])."""
    if isinstance(path, str | Path):
        return [_resolve(engine, path)]
    if not path:
        out = [(cb, "") for root in engine.indexed_roots() if (cb := engine.codebase(root)) is not None]
        if not out:
            raise NotIndexedError("no codebase is indexed yet: run `claude-context index PATH` first")
        return out
    found: dict[tuple[str, str], tuple[Codebase, str]] = {}
    unknown: list[str] = []
    for p in path:
        try:
            cb, sub = _resolve(engine, p)
        except NotIndexedError:
            unknown.append(str(p))
            continue
        found.setdefault((str(cb.root), sub), (cb, sub))
    if unknown:
        known = ", ".join(str(r) for r in engine.indexed_roots()) or "none"
        raise UserError(f"not an indexed codebase: {', '.join(unknown)} (indexed: {known})")
    return list(found.values())


def _resolve(engine: Engine, path: str | Path) -> tuple[Codebase, str]:
    """``engine.resolve`` with the two mistakes said as such: a file (it would be searched as a
    folder of that name: nothing) and a path that does not exist (not "not indexed yet")."""
    try:
        cb, sub = engine.resolve(path)
    except NotIndexedError:
        target = Path(path).expanduser()
        if not target.exists():
            raise UserError(f"path does not exist: {target}") from None
        raise
    inside = cb.root / sub
    if sub and not inside.exists():
        raise UserError(f"path does not exist: {inside}")
    if sub and inside.is_file():
        raise UserError(
            f"{inside} is a file, not a folder: search its codebase or a folder inside it "
            f"(--path '{sub}' narrows the results to files)"
        )
    return cb, sub


def _retrieve(
    engine: Engine,
    cb: Codebase,
    sub: str,
    query: str,
    mode: str,
    filters: SearchFilter | None,
    settings: RankSettings,
    k: int,
    response: SearchResponse,
    single: bool,
) -> tuple[list, dict, float] | None:
    """One codebase's rankings, chunk rows and its dense share (0: no dense ranking, the semantic
    coverage while indexing, else 1: ``ranking.for_coverage``); notes (partial,
    empty, filtered out) go on ``response`` (named by root when several are searched)."""
    filters = dataclasses.replace(filters) if filters is not None else SearchFilter()
    if sub:
        filters.subfolder = sub
    status = engine.status_of(cb)
    response.partial = response.partial or status.status == "indexing"
    response.semantic_coverage = min(response.semantic_coverage, status.semantic_coverage)
    note = ""
    if status.semantic_coverage < 1.0 and mode != "keyword":
        note = semantic_note(status.semantic_coverage)
    store = cb.store
    index = store.chunk_index()
    scope: set[str] | None = None
    if index is None:  # nothing embedded yet
        note = "the index is empty so far"
    else:
        store.repair(store.model_id or engine.embedder().model_id, durable=False)
        scope = resolve_scope(store.meta, filters)
        if scope is not None and not scope:
            note = "no indexed file matches the filters"
    if note:
        _add_note(response, note if single else f"{cb.root}: {note}")
    if index is None or (scope is not None and not scope):
        return None
    static_all = (  # the static table's ranking of every chunk, computed beside the rest
        _static_pool().submit(complete_static_hits, cb, query, scope, status.semantic_coverage >= 1.0)
        if _wants_static_all(cb.config, mode, settings, status, query)
        else None
    )
    qvec = cb.embed_query(query) if _wants_vector(mode, status) else None
    factor = 1.0 if mode == "semantic" else 0.0 if qvec is None else 1.0
    if qvec is not None and mode == "hybrid" and status.semantic_coverage < 1.0:
        # Only part of the chunks has vectors yet, and the dense ranking's min-max normalisation
        # would give the best of those full marks: its weight follows the coverage (measured on
        # simulated partial coverage: full weight at 10-50% costs up to 0.4 NDCG@10 against
        # keywords alone; this rule stays within 0.08 of the better of the two).
        factor = status.semantic_coverage
        settings = dataclasses.replace(settings, dense_weight=settings.dense_weight * factor)
    rankings = retrieve(index, store.meta, query, qvec, mode, scope, filters, settings, k)
    if mode == "hybrid" and settings.fusion == "score" and status.semantic_coverage < 1.0:
        static = static_hits(cb, query, scope, k)
        if static:
            rankings.append(("static", static))
    files: dict[str, float] = {}
    if static_all is not None:
        static, files = static_all.result()
        if static:
            rankings.append(("static_all", static))
    rows = store.meta.get_chunks(list({h.id for _, hits in rankings for h in hits}))
    if files:  # file-level evidence, given to each candidate chunk of the file
        found = [Hit(cid, files[sc.chunk.path]) for cid, sc in rows.items() if sc.chunk.path in files]
        rankings.append(("files", found))
    return rankings, rows, factor


def static_hits(cb: Codebase, query: str, scope: set[str] | None, k: int) -> list[Hit]:
    """The chunks still without a transformer vector, ranked by the static table (``embedding/
    static.py``). Pending chunks it has not seen (staged by another process, or before the table
    existed) are queued for its background encoder: a search never waits for them. Empty when
    there is no table; never fails a search."""
    try:
        vectors = vectors_for(cb.store, cb.config)
        if vectors is None:
            return []
        meta = cb.store.meta
        pending = meta.pending_ids()
        if not pending:
            if not ranks_complete(cb.config, meta.chunk_count()):
                vectors.clear()  # every chunk has its vector: nothing of the static table runs now
            return []
        missing = vectors.missing(pending)[:STATIC_BACKFILL]
        if missing:
            rows = meta.get_chunks(missing)
            vectors.add_later([(cid, sc.embed_key, sc.chunk.embed_text()) for cid, sc in rows.items()])
        if scope is not None:
            pending &= set(meta.chunk_ids_for_paths(scope))
        return [Hit(cid, score) for cid, score in vectors.rank(query, pending, k)]
    except Exception as exc:
        log.warning("static ranking failed (%s): keywords only", exc)
        return []


def _wants_static_all(
    config: Config, mode: str, settings: RankSettings, status: CodebaseStatus, query: str
) -> bool:
    """Hybrid score fusion, the table on for a codebase of this size (``static.ranks_complete``),
    a query that seeks files; while indexing too. Until the last transformer vector, only the
    embedded files had a semantic ranking at full strength and no file had its closeness, so
    answers got worse as coverage grew (simulated at 10-90% coverage: mean NDCG@10 0.825-0.842
    without the whole table, 0.837-0.854 with it; bench/README.md)."""
    hybrid = mode == "hybrid" and settings.fusion == "score"
    return hybrid and ranks_complete(config, status.chunks) and _seeks_files(query)


def _static_pool() -> ThreadPoolExecutor:
    global _STATIC_POOL
    with _POOL_LOCK:
        if _STATIC_POOL is None:
            _STATIC_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="static-rank")
        return _STATIC_POOL


def complete_static_hits(
    cb: Codebase, query: str, scope: set[str] | None, complete: bool = True
) -> tuple[list[Hit], dict[str, float]]:
    """The best ``STATIC_RANKED`` of every chunk by the static table, beside the hybrid, for
    queries that seek files: its token-level matches find files the transformer's and the
    keywords' rankings miss (measured on the three query kinds: bench/README.md; doc sentences
    lose by it, so they go without). With them, each file's closeness to the query by the mean
    of its chunks' vectors (``StaticVectors.file_scores``): what the file as a whole is about,
    plus its centrality (``search/centrality.py``): how much of the rest of the code uses it.
    Runs in a worker thread while the query is embedded and the other rankings retrieved
    (numpy's scan releases the GIL). Empty while some chunk has no static vector yet
    (``StaticVectors.ensure_all``); while indexing (not ``complete``) a search encodes none
    itself: the staged chunks are the background encoder's, and the answer must not wait."""
    try:
        vectors = vectors_for(cb.store, cb.config)
        if vectors is None or not vectors.ensure_all(cb.store.meta, STATIC_SYNC if complete else 0):
            return [], {}
        allowed = set(cb.store.meta.chunk_ids_for_paths(scope)) if scope is not None else None
        q = vectors.query_vector(query)
        hits = [Hit(cid, score) for cid, score in vectors.rank(q, allowed, STATIC_RANKED)]
        files = vectors.file_scores(q, cb.store.meta) if cb.config.static_file_weight else {}
        if files and cb.config.central_file_weight:  # the file the rest of the code uses
            for path, c in file_centrality(cb.store.meta).items():
                files[path] = files.get(path, 0.0) + cb.config.central_file_weight * c
        return hits, files
    except Exception as exc:
        log.warning("static ranking failed (%s): without it", exc)
        return [], {}


def _wants_vector(mode: str, status: CodebaseStatus) -> bool:
    """Whether a search embeds its query. Not in keyword mode; not in hybrid mode while no chunk has
    its vector yet (the first seconds of a first index): the dense side could find nothing, and
    the answer would wait for the model to load (or be exported) for no gain."""
    if mode == "keyword":
        return False
    if mode == "hybrid" and status.status == "indexing":
        return status.semantic_coverage > 0.0 and status.chunks > 0
    return True


def _shape(engine: Engine, ranked: list, want: int, source) -> tuple[list[SearchResult], bool]:
    """The first ``want`` results (merged, no budget yet) and whether the ranking goes on."""
    c = engine.config

    def shape(n: int) -> list[SearchResult]:
        return shape_results(
            ranked,
            n,
            UNBOUNDED_TOKENS,
            merge_gap=c.merge_gap if c.merge_gap >= 0 else None,
            top_merge_gap=c.top_merge_gap if c.top_merge_gap >= 0 else None,
            max_merged_chars=c.max_merged_chars,
            line_source=source,
        )[0]

    shaped = shape(want)
    return shaped, len(shaped) == want and len(shape(want + 1)) > want


def _add_note(response: SearchResponse, note: str) -> None:
    response.note = f"{response.note}; {note}" if response.note else note
