"""Markdown split by headings (ATX and setext), fence-aware, with heading paths as symbols.

A line scanner is enough here and cheaper than a grammar: the only structure that matters is
headings and fenced code blocks (a ``#`` inside a fence is code, not a heading, and fences are
not cut in the middle when a section must be split).
"""

from __future__ import annotations

import re

from .text import BreakScore, Lines, Piece, windows

_ATX_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-{2,})[ \t]*$")
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_NOT_PARAGRAPH_RE = re.compile(r"^ {0,3}(?:[-*+>|]|\d+[.)]|<|#|`{3}|~{3})")
_OUTSIDE, _OPEN, _INSIDE, _CLOSE = 0, 1, 2, 3  # fence role of a line


def _scan(lines: list[str]) -> tuple[list[tuple[int, int, str]], list[int]]:
    """Headings as (first line, level, title) and each line's fence role (see ``_OPEN`` ...)."""
    headings: list[tuple[int, int, str]] = []
    role = [_OUTSIDE] * len(lines)
    fence: str | None = None
    i = 0
    if lines and lines[0].strip() == "---":  # YAML front matter: no headings inside
        for j in range(1, min(len(lines), 200)):
            if lines[j].strip() in ("---", "..."):
                i = j + 1
                break
    para_start = -1  # first line of the current paragraph (setext headings span it)
    while i < len(lines):
        line = lines[i]
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]) and _FENCE_RE.match(line):
                role[i] = _CLOSE
                fence = None
            else:
                role[i] = _INSIDE
            i += 1
            continue
        m = _FENCE_RE.match(line)
        if m:
            fence = m.group(1)
            role[i] = _OPEN
            para_start = -1
            i += 1
            continue
        if not line.strip():
            para_start = -1
            i += 1
            continue
        m = _ATX_RE.match(line)
        if m:
            headings.append((i, len(m.group(1)), (m.group(2) or "").strip()))
            para_start = -1
            i += 1
            continue
        m = _SETEXT_RE.match(line)
        if m and para_start >= 0:
            title = " ".join(x.strip() for x in lines[para_start:i])
            headings.append((para_start, 1 if m.group(1)[0] == "=" else 2, title))
            para_start = -1
            i += 1
            continue
        if para_start < 0 and not _NOT_PARAGRAPH_RE.match(line) and not line.startswith(("    ", "\t")):
            para_start = i
        i += 1
    return headings, role


def _break_score(lines: Lines, role: list[int]) -> BreakScore:
    """Blank lines and fence edges are the best breaks; never inside a fence unless unavoidable."""

    def score(k: int) -> int:
        nxt = k + 1
        if nxt >= len(lines):
            return 3
        if role[k] in (_OPEN, _INSIDE):
            return 0
        if lines.blank[nxt] or role[nxt] == _OPEN or role[k] == _CLOSE:
            return 3
        return 1

    return score


def markdown_pieces(lines: Lines, max_chars: int) -> list[Piece]:
    headings, role = _scan(lines.lines)
    score = _break_score(lines, role)
    out: list[Piece] = []
    bounds = [h[0] for h in headings] + [len(lines)]
    stack: list[tuple[int, str, str]] = []  # (level, title, heading line)
    sections: list[tuple[int, int, str, str, str]] = []
    if not headings or headings[0][0] > 0:
        sections.append((0, bounds[0] - 1, "", "", ""))
    for idx, (line, level, title) in enumerate(headings):
        while stack and stack[-1][0] >= level:
            stack.pop()
        parents = "\n".join(h[2] for h in stack)
        stack.append((level, title, lines.lines[line].strip()))
        symbol = " > ".join(h[1] for h in stack)
        sections.append((line, bounds[idx + 1] - 1, symbol, parents, lines.lines[line].strip()))
    for start, end, symbol, parents, heading in sections:
        own_ctx = f"{parents}\n{heading}" if parents else heading
        for i, (s, e) in enumerate(windows(lines, start, end, max_chars, score=score)):
            out.append(Piece(s, e, "section", symbol, parents if i == 0 else own_ctx, heading))
    return out
