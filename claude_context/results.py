"""Search results shaped for agents: merged neighbours, bounded size, honest about cuts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from claude_context.index.metadata import StoredChunk

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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["results"] = [r.to_dict() for r in self.results]
        return d


def shape_results(
    ranked: list[tuple[StoredChunk, float]], limit: int, token_budget: int, merge_gap: int = 1
) -> tuple[list[SearchResult], bool]:
    """Turn ranked chunks into at most ``limit`` results within ``token_budget``.

    Hits from one file that touch or overlap (within ``merge_gap`` lines) become one result at the
    rank of the better one, so an agent reads a contiguous span once. Returns (results, cut).
    """
    results: list[SearchResult] = []
    for sc, score in ranked:
        c = sc.chunk
        merged = False
        for r in results:
            if (
                r.path == c.path
                and c.start_line <= r.end_line + 1 + merge_gap
                and c.end_line >= r.start_line - 1 - merge_gap
            ):
                _merge_into(r, sc)
                merged = True
                break
        if merged:
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
                score=round(float(score), 6),
                content=c.content,
                context=c.context,
            )
        )
    return _apply_budget(results, token_budget)


def _merge_into(r: SearchResult, sc: StoredChunk) -> None:
    c = sc.chunk
    if c.start_line >= r.start_line and c.end_line <= r.end_line:
        return
    a_lines = r.content.split("\n")
    b_lines = c.content.split("\n")
    start = min(r.start_line, c.start_line)
    end = max(r.end_line, c.end_line)
    lines: dict[int, str] = {}
    for i, line in enumerate(b_lines):
        lines[c.start_line + i] = line
    for i, line in enumerate(a_lines):
        lines[r.start_line + i] = line
    r.content = "\n".join(lines.get(n, "") for n in range(start, end + 1))
    r.start_line, r.end_line = start, end
    if c.symbol and c.symbol != r.symbol and r.symbol:
        # keep the better hit's symbol first; name the neighbour too, so the agent sees both
        names = r.symbol.split(", ")
        if c.symbol not in names:
            r.symbol = ", ".join([*names, c.symbol])


def _apply_budget(results: list[SearchResult], token_budget: int) -> tuple[list[SearchResult], bool]:
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
