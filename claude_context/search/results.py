"""Search results shaped for agents: merged neighbours, bounded size, honest about cuts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from claude_context.index.truth.metadata import StoredChunk
from claude_context.records import Chunk

CHARS_PER_TOKEN = 4


@dataclass(slots=True)
class SearchResult:
    path: str  # relative to the codebase root
    start_line: int
    end_line: int
    language: str
    symbol: str
    kind: str
    score: float
    content: str
    context: str = ""  # enclosing definition header, when the chunk is part of a split class
    truncated: bool = False
    root: str = ""  # the codebase this result comes from (absolute path)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class SearchResponse:
    root: str
    query: str
    mode: str
    results: list[SearchResult] = field(default_factory=list)
    partial: bool = False  # the codebase is still being indexed: results cover what is indexed so far
    truncated: bool = False  # the token budget cut results or content
    took_ms: float = 0.0
    subfolder: str = ""
    note: str = ""
    # Share of the index's chunks that have vectors: < 1 while embeddings fill in behind keywords.
    semantic_coverage: float = 1.0
    roots: list[str] = field(default_factory=list)  # every codebase searched (one ranking across them)
    offset: int = 0  # results skipped before this page
    next_offset: int | None = None  # pass as ``offset`` for the next page; None: nothing more
    has_more: bool = False  # results beyond this page exist

    def to_dict(self) -> dict:
        d = asdict(self)
        d["results"] = [r.to_dict() for r in self.results]
        return d


LineSource = Callable[[str, int], str]  # (path, line number) -> that line of the indexed file


def shape_results(
    ranked: list[tuple[StoredChunk, float]],
    limit: int,
    token_budget: int,
    merge_gap: int | None = 1,
    line_source: LineSource | None = None,
    max_merged_chars: int = 0,
    top_merge_gap: int | None = None,
) -> tuple[list[SearchResult], bool]:
    """Turn ranked chunks into at most ``limit`` results within ``token_budget``.

    Hits from one file that touch or overlap (within ``merge_gap`` lines; None: never) become one
    result at the rank of the better one, so an agent reads a contiguous span once. The first
    result, the one an agent reads closely, absorbs hits up to ``top_merge_gap`` lines away
    (default: ``merge_gap``): its neighbourhood comes with it, while the alternatives below stay
    compact. A chunk whose text repeats an earlier result's (a vendored or generated copy) is
    dropped: it would cost tokens and say nothing new. Returns (results, cut).
    """
    if merge_gap is None or top_merge_gap is None:
        top_merge_gap = merge_gap
    results: list[SearchResult] = []
    seen_text: set[str] = set()
    for sc, score in ranked:
        c = sc.chunk
        fingerprint = " ".join(c.content.split())
        if len(fingerprint) > 40 and fingerprint in seen_text:
            continue  # the same text (a copy elsewhere, or already merged) is shown once
        seen_text.add(fingerprint)
        near = (
            []
            if merge_gap is None
            else [
                r
                for i, r in enumerate(results)
                if r.path == c.path
                and _touches(r, c.start_line, c.end_line, top_merge_gap if i == 0 else merge_gap)
                and (not max_merged_chars or _merged_size(r, c) <= max_merged_chars)
            ]
        )
        if near:
            target = near[0]  # the best-ranked span it touches absorbs it (and any span it bridges)
            _merge_into(target, sc.chunk, line_source)
            for other in near[1:]:
                _merge_into(target, other, line_source)
                target.score = max(target.score, other.score)
                results.remove(other)
            continue
        if len(results) >= limit:
            break
        results.append(
            SearchResult(
                path=c.path,
                start_line=c.start_line,
                end_line=c.end_line,
                language=c.language,
                symbol=c.symbol,
                kind=c.kind,
                score=float(score),
                content=c.content,
                context=c.context,
            )
        )
    for r in results:
        r.score = round(r.score, 6)
    return apply_budget(results, token_budget)


def _merged_size(r: SearchResult, c: Chunk) -> int:
    """Approximate characters of ``r`` widened to cover ``c`` (lines in between counted at the
    average line length of the two)."""
    lines = max(r.end_line, c.end_line) - min(r.start_line, c.start_line) + 1
    have = r.end_line - r.start_line + 1 + c.end_line - c.start_line + 1
    per_line = (len(r.content) + len(c.content)) / max(have, 1)
    return int(lines * per_line)


def _touches(r: SearchResult, start: int, end: int, gap: int) -> bool:
    return start <= r.end_line + 1 + gap and end >= r.start_line - 1 - gap


def _merge_into(r: SearchResult, c: Chunk | SearchResult, line_source: LineSource | None) -> None:
    """Widen ``r`` to cover chunk (or result) ``c``; a gap line between them (at most
    ``merge_gap`` lines, blank or a tiny chunk) comes from ``line_source``."""
    if c.start_line >= r.start_line and c.end_line <= r.end_line:
        return
    lines: dict[int, str] = {}
    for i, line in enumerate(c.content.split("\n")):
        lines[c.start_line + i] = line
    for i, line in enumerate(r.content.split("\n")):
        lines[r.start_line + i] = line
    start, end = min(r.start_line, c.start_line), max(r.end_line, c.end_line)
    for n in range(start, end + 1):
        if n not in lines:
            lines[n] = line_source(r.path, n) if line_source else ""
    r.content = "\n".join(lines[n] for n in range(start, end + 1))
    r.start_line, r.end_line = start, end
    if c.symbol and r.symbol and c.symbol != r.symbol:
        # keep the better hit's symbol first; name the neighbour too, so the agent sees both
        names = r.symbol.split(", ")
        for name in c.symbol.split(", "):
            if name not in names:
                names.append(name)
        r.symbol = ", ".join(names)
    elif c.symbol and not r.symbol:
        r.symbol = c.symbol


def apply_budget(results: list[SearchResult], token_budget: int) -> tuple[list[SearchResult], bool]:
    budget = token_budget * CHARS_PER_TOKEN
    out: list[SearchResult] = []
    used = 0
    for r in results:
        size = len(r.content)
        if used + size <= budget:
            out.append(r)
            used += size
            continue
        room = budget - used
        if room >= 200 or not out:  # a useful head of this result still fits
            lines = r.content[: max(room, 200)].split("\n")
            if len(lines) > 1:
                lines = lines[:-1]  # whole lines only
            r.content = "\n".join(lines)
            r.end_line = r.start_line + len(lines) - 1
            r.truncated = True
            out.append(r)
        return out, True
    return out, False
