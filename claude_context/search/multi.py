"""One ranking over several codebases, and pages of a ranking.

Several roots are searched by pooling each retriever's candidates from every root into one list
(dense cosine scores come from the same model, so they compare directly; BM25 scores are close
enough once min-max normalised over the pooled candidates) and fusing once, exactly as for one
codebase. The alternative, fusing each root on its own and interleaving, puts every root's best
hit near the top even when that root has nothing relevant; pooling lets a root with only weak
matches sink (measured on the fixture: ``tests/test_features.py``). Chunk ids and paths are made
unique across roots (``<n>/`` before the path) for fusion and merging, then split back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from claude_context.index.base import Hit
from claude_context.index.truth.metadata import StoredChunk
from claude_context.search.results import SearchResult, apply_budget

ID_BITS = 40  # chunk ids of one codebase stay far below 2**40
Rankings = list[tuple[str, list[Hit]]]
LineSource = Callable[[str, int], str]


def pool(parts: Sequence[tuple[Rankings, dict[int, StoredChunk]]]) -> tuple[Rankings, dict[int, StoredChunk]]:
    """Each root's (rankings, rows) as one: retriever lists merged by score, ids and paths unique."""
    merged: dict[str, list[Hit]] = {}
    rows: dict[int, StoredChunk] = {}
    for n, (rankings, part_rows) in enumerate(parts):
        base = n << ID_BITS
        for name, hits in rankings:
            merged.setdefault(name, []).extend(Hit(base + h.id, h.score) for h in hits)
        for cid, sc in part_rows.items():
            chunk = dataclasses.replace(sc.chunk, path=f"{n}/{sc.chunk.path}")
            rows[base + cid] = StoredChunk(base + cid, chunk, sc.embed_key)
    pooled = [(name, sorted(hits, key=lambda h: -h.score)) for name, hits in merged.items()]
    return pooled, rows


def pooled_line_source(sources: Sequence[LineSource]) -> LineSource:
    """A line source over pooled paths (``<n>/path``), asking root ``n``'s own source."""

    def line(path: str, number: int) -> str:
        n, _, rest = path.partition("/")
        return sources[int(n)](rest, number)

    return line


def split_roots(results: list[SearchResult], roots: Sequence[str]) -> None:
    """Undo ``pool``'s path prefix: each result names its root and its path within it."""
    for r in results:
        n, _, rest = r.path.partition("/")
        r.root, r.path = roots[int(n)], rest


@dataclasses.dataclass(slots=True)
class Page:
    """Where a page sits in its ranking: what to pass for the next one, and what was cut."""

    offset: int = 0
    next_offset: int | None = None
    has_more: bool = False
    truncated: bool = False  # the token budget cut content or left results of this page out
    note: str = ""


def page_results(
    shaped: list[SearchResult], offset: int, limit: int, has_more: bool, token_budget: int
) -> tuple[list[SearchResult], Page]:
    """Results ``offset..offset+limit`` of ``shaped`` within ``token_budget``; ``has_more``: the
    ranking goes on past ``offset + limit``."""
    if offset and offset >= len(shaped):
        note = f"offset {offset} is past the end: there are {len(shaped)} results in all"
        return [], Page(offset=offset, note=note)
    page, cut = apply_budget(shaped[offset : offset + limit], token_budget)
    shown = offset + len(page)
    more = cut or has_more or shown < len(shaped)
    return page, Page(offset, shown if more else None, more, cut)


def page_items(
    items: Sequence, offset: int, limit: int, token_budget: int, size: Callable[[object], int]
) -> tuple[list, Page]:
    """Items ``offset..offset+limit`` of a list (symbols, references) that fit ``token_budget``
    (``size``: an item's characters, 4 per token); at least one item is always shown."""
    if offset and offset >= len(items):
        note = f"offset {offset} is past the end: there are {len(items)} in all"
        return [], Page(offset=offset, note=note)
    budget, used, out = token_budget * 4, 0, []
    for item in items[offset : offset + limit]:
        used += size(item)
        if out and used > budget:
            break
        out.append(item)
    shown = offset + len(out)
    cut = len(out) < len(items[offset : offset + limit])
    more = shown < len(items)
    return out, Page(offset, shown if more else None, more, cut)
