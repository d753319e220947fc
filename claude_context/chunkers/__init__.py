"""Turn a file into searchable chunks: tree-sitter definitions, markdown sections, or line windows.

Public API: ``detect_language(path)`` and ``chunk_file(path, text, ...)``. Every chunk's
``content`` is exactly its lines of the file, chunks are sorted and never overlap, and every
non-blank line is in exactly one chunk, whatever the splitter; any parser surprise falls back
to line windows instead of raising, because one odd file must never stop an indexing run.
"""

from __future__ import annotations

import logging

from ..records import Chunk
from .languages import SPECS, detect_language
from .markdown import markdown_pieces
from .text import Lines, Piece, text_pieces

__all__ = ["CHUNKER_VERSION", "chunk_file", "detect_language"]

# Recorded with each index: bump it when a change here gives unchanged files other chunks (a new
# language, a new definition shape), so existing indexes re-chunk (vectors of unchanged chunk
# texts come from the embedding cache). 1: until Elixir had a grammar; 2: Elixir; 3: a short
# comment alone between definitions joins a neighbouring chunk; 4: no split leaves a tail under a
# quarter of the budget; 5: uses (``refs``) recorded for Ruby, Kotlin, C, C++, C#, PHP, Swift and
# Elixir, and every definition, nested ones too (``defs``: find_symbol).
CHUNKER_VERSION = 5

log = logging.getLogger(__name__)

AST_LANGUAGES = frozenset(SPECS) | {"markdown"}


def valid_pieces(pieces: list[Piece], lines: Lines) -> bool:
    """Sorted, non-overlapping, within the file, trimmed, and covering every non-blank line."""
    n = len(lines)
    blank = lines.blank
    nxt = 0  # first line not yet covered
    for p in pieces:
        if p.start < nxt or p.end < p.start or p.end >= n or blank[p.start] or blank[p.end]:
            return False
        if any(not blank[i] for i in range(nxt, p.start)):
            return False
        nxt = p.end + 1
    return all(blank[i] for i in range(nxt, n))


def ast_pieces(
    language: str, lines: Lines, text: str, max_chars: int, module_chars: int | None = None
) -> list[Piece]:
    """Structure-aware pieces for a language we can parse (raises on parser trouble)."""
    if language == "markdown":
        return markdown_pieces(lines, max_chars)
    from .treesitter import TreeSitterChunker  # imported lazily: the grammars are heavy

    return TreeSitterChunker(SPECS[language], text, lines, max_chars, module_chars).pieces()


def chunk_file(
    path: str,
    text: str,
    *,
    max_chars: int = 1500,
    module_chars: int | None = 600,
    splitter: str = "ast",
    language: str | None = None,
) -> list[Chunk]:
    """Chunks of one file (``path`` is the relative POSIX path stored in them). Never raises."""
    if not text or text.isspace():
        return []
    lang = language or detect_language(path) or "text"
    max_chars = max(1, int(max_chars))
    lines = Lines(text)
    pieces: list[Piece] | None = None
    if splitter != "text" and lang in AST_LANGUAGES:
        try:
            pieces = ast_pieces(lang, lines, text, max_chars, module_chars)
            if not valid_pieces(pieces, lines):
                log.warning("chunker produced inconsistent spans for %s; using line windows", path)
                pieces = None
        except (Exception, RecursionError) as exc:  # any grammar/parser surprise: degrade, don't fail
            log.warning("chunking %s with %s failed (%s); using line windows", path, lang, exc)
            pieces = None
    if pieces is None:
        pieces = text_pieces(lines, max_chars)
    return [
        Chunk(
            path=path,
            language=lang,
            start_line=p.start + 1,
            end_line=p.end + 1,
            symbol=p.symbol,
            kind=p.kind,
            content=lines.join(p.start, p.end),
            context=p.context,
            signature=p.signature,
        )
        for p in pieces
    ]
