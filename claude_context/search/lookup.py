"""Lookups by name: definitions (``find_symbol``) and references (``find_references``), paged.

Both read the codebase's SQLite only (no model, no derived index), so they answer in milliseconds
and work while the vectors are still being computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from claude_context.index.truth.metadata import MetadataStore, StoredChunk
from claude_context.search.multi import Page, page_items

CONTEXT_CHARS = 160  # a reference's line of context is cut to this
MAX_ROWS = 10_000  # references read per lookup (a name used more often than this says so)


@dataclass(slots=True)
class SymbolHit:
    path: str
    start_line: int
    end_line: int
    language: str
    symbol: str
    kind: str
    signature: str


@dataclass(slots=True)
class RefHit:
    """A definition (``kind`` "definition") or a use of the name (call, import, type, use)."""

    path: str
    line: int
    kind: str
    context: str  # the line itself, stripped and cut to CONTEXT_CHARS
    symbol: str = ""  # definitions: the dotted symbol
    end_line: int = 0  # definitions: last line


@dataclass(slots=True)
class LookupResponse:
    """A page of definitions or references of ``name`` in one codebase."""

    root: str
    name: str
    kind: str | None = None
    results: list = field(default_factory=list)
    offset: int = 0
    next_offset: int | None = None
    has_more: bool = False
    truncated: bool = False
    note: str = ""

    def paged(self, items: list, page: Page) -> LookupResponse:
        self.results = items
        self.offset, self.next_offset, self.has_more = page.offset, page.next_offset, page.has_more
        self.truncated = page.truncated
        self.note = self.note or page.note
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["results"] = [asdict(r) for r in self.results]
        return d


def _inside(path: str, sub: str) -> bool:
    return not sub or path.startswith(sub.rstrip("/") + "/")


def symbol_hits(meta: MetadataStore, name: str, kind: str | None, sub: str, want: int) -> list[SymbolHit]:
    """Up to ``want`` definitions named ``name`` inside ``sub``: definition chunks of that name
    (the pieces of one split definition as one hit over its whole span), then the definitions
    without a chunk of their own (a method of a class that is one chunk: the ``defs`` table),
    then chunks whose name starts with it."""
    rows = meta.find_symbols(name, kind, want * 4 if sub else want)
    hits = [_symbol_hit(sc) for sc in rows if _inside(sc.chunk.path, sub)]
    last = name.rsplit(".", 1)[-1].lower()
    exact = [h for h in hits if h.symbol == name or h.symbol.rsplit(".", 1)[-1].lower() == last]
    defs = [SymbolHit(*row) for row in meta.identifiers.find_definitions(name, kind, want * 4)]
    defs = [d for d in defs if _inside(d.path, sub)]
    whole: dict[tuple[str, int], SymbolHit] = {}  # a definition -> the one hit of its chunks
    for h in exact:
        d = next((d for d in defs if d.symbol == h.symbol and _overlap(d, h)), None)
        if d is None:
            whole[(h.path, -len(whole) - 1)] = h
            continue
        first = whole.setdefault((h.path, d.start_line), h)
        first.start_line = min(first.start_line, h.start_line)
        first.end_line = max(first.end_line, h.end_line, d.end_line)
    listed = list(whole.values())
    nested = [d for d in defs if not any(_overlap(h, d) for h in listed)]
    return (listed + nested + [h for h in hits if h not in exact])[:want]


def _overlap(a: SymbolHit, b: SymbolHit) -> bool:
    return a.path == b.path and a.start_line <= b.end_line and b.start_line <= a.end_line


def _symbol_hit(sc: StoredChunk) -> SymbolHit:
    c = sc.chunk
    signature = c.signature or c.content.split("\n", 1)[0].strip()
    return SymbolHit(c.path, c.start_line, c.end_line, c.language, c.symbol, c.kind, signature)


def find_symbols(
    meta: MetadataStore,
    root: str,
    name: str,
    kind: str | None,
    sub: str,
    limit: int,
    offset: int,
    budget: int,
) -> LookupResponse:
    hits = symbol_hits(meta, name, kind, sub, offset + limit + 1)
    page, where = page_items(hits, offset, limit, budget, _symbol_size)
    return LookupResponse(root, name, kind).paged(page, where)


def _symbol_size(h: SymbolHit) -> int:
    return len(h.path) + len(h.symbol) + len(h.signature) + 40


def find_references(
    meta: MetadataStore,
    root: str,
    name: str,
    sub: str,
    limit: int,
    offset: int,
    budget: int,
    line_of: Callable[[str, int], str],
) -> LookupResponse:
    """Definitions of ``name`` first (exact name matches), then every stored use, by path and line."""
    last = name.rsplit(".", 1)[-1]
    defs = [h for h in symbol_hits(meta, name, None, sub, 50) if h.symbol.rsplit(".", 1)[-1] == last]
    items = [
        RefHit(h.path, _signature_line(h, line_of), "definition", "", h.symbol, h.end_line) for h in defs
    ]
    defined = {(h.path, h.line) for h in items}
    rows = meta.identifiers.find_refs(last, MAX_ROWS, sub)
    items += [RefHit(p, line, kind, "") for p, line, kind in rows if (p, line) not in defined]
    out = LookupResponse(root, name)
    if not meta.identifiers.recorded() and meta.chunk_count():
        out.note = "no references are stored for this codebase yet: run `claude-context index` on it once"
    elif not items:
        out.note = f'no definition or use of "{name}" is indexed'
    elif len(rows) >= MAX_ROWS:
        out.note = f"only the first {MAX_ROWS} uses are listed"
    page, where = page_items(items, offset, limit, budget, _ref_size)
    for r in page:
        if not r.context:
            r.context = line_of(r.path, r.line).strip()[:CONTEXT_CHARS]
    return out.paged(page, where)


def _signature_line(h: SymbolHit, line_of: Callable[[str, int], str]) -> int:
    """The line a definition's signature starts on (its chunk may begin with comments above it)."""
    head = h.signature.strip()[:40]
    for n in range(h.start_line, min(h.end_line, h.start_line + 60) + 1):
        if head and line_of(h.path, n).strip().startswith(head):
            return n
    return h.start_line


def _ref_size(r: RefHit) -> int:
    return len(r.path) + CONTEXT_CHARS + 30
