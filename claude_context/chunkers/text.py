"""Line bookkeeping shared by every splitter, and the plain line-window fallback.

All splitters work on 0-based line indexes of ``text.splitlines()`` and produce inclusive
``(start, end)`` spans; sizes are computed from prefix sums so that splitting a 5,000-line
file stays linear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

TEXT_MAX_LINES = 60


class Lines:
    """The lines of one file with O(1) span sizes (chars of ``"\\n".join(lines[s:e+1])``)."""

    __slots__ = ("_prefix", "blank", "lines")

    def __init__(self, text: str) -> None:
        self.lines: list[str] = text.splitlines()
        prefix = [0]
        acc = 0
        for line in self.lines:
            acc += len(line)
            prefix.append(acc)
        self._prefix = prefix
        self.blank: list[bool] = [not line or line.isspace() for line in self.lines]

    def __len__(self) -> int:
        return len(self.lines)

    def size(self, start: int, end: int) -> int:
        return self._prefix[end + 1] - self._prefix[start] + (end - start)

    def trim(self, start: int, end: int) -> tuple[int, int] | None:
        """Drop blank lines at both ends of a span; None when nothing is left."""
        blank = self.blank
        while start <= end and blank[start]:
            start += 1
        while end >= start and blank[end]:
            end -= 1
        return (start, end) if start <= end else None

    def indent(self, i: int) -> int:
        line = self.lines[i]
        return len(line) - len(line.lstrip())

    def join(self, start: int, end: int) -> str:
        return "\n".join(self.lines[start : end + 1])


@dataclass(slots=True)
class Piece:
    """An inclusive 0-based line span with its chunk metadata, before it becomes a ``Chunk``."""

    start: int
    end: int
    kind: str
    symbol: str = ""
    context: str = ""
    signature: str = ""
    trivial: bool = False  # only closing tokens (``}``, ``end``): may be glued to the previous piece


BreakScore = Callable[[int], int]


def code_break_score(lines: Lines, base_indent: int) -> BreakScore:
    """Prefer to break before a blank line, then before a line back at the span's own indentation."""

    def score(k: int) -> int:
        nxt = k + 1
        if nxt >= len(lines) or lines.blank[nxt]:
            return 3
        return 2 if lines.indent(nxt) <= base_indent else 1

    return score


def text_break_score(lines: Lines) -> BreakScore:
    def score(k: int) -> int:
        nxt = k + 1
        return 3 if nxt >= len(lines) or lines.blank[nxt] else 1

    return score


def windows(
    lines: Lines,
    start: int,
    end: int,
    max_chars: int,
    *,
    max_lines: int = 0,
    score: BreakScore | None = None,
) -> list[tuple[int, int]]:
    """Split ``start..end`` into spans of at most ``max_chars`` (and ``max_lines`` when set).

    Breaks only at line boundaries: a single line longer than ``max_chars`` becomes its own span.
    Within the last two thirds of each full window the break with the best ``score`` wins (latest
    on ties), so pieces end at blank lines or statement boundaries when there is one; a break that
    would leave less than a quarter of ``max_chars`` to come is passed over when another exists
    (a function a little over budget used to end in a three-line tail that answers nothing alone).
    """
    out: list[tuple[int, int]] = []
    span = lines.trim(start, end)
    if span is None:
        return out
    s, e = span
    if score is None:
        score = code_break_score(lines, lines.indent(s))
    blank = lines.blank
    while s <= e:
        limit = e if not max_lines else min(e, s + max_lines - 1)
        if limit == e and lines.size(s, e) <= max_chars:
            out.append((s, e))
            break
        j = s
        while j < limit and lines.size(s, j + 1) <= max_chars:
            j += 1
        if j > s:
            j = _break_line(lines, s, j, e, max_chars, score)
        piece = lines.trim(s, j)
        if piece is not None:
            out.append(piece)
        s = j + 1
        while s <= e and blank[s]:
            s += 1
    return out


def _break_line(lines: Lines, s: int, j: int, e: int, max_chars: int, score: BreakScore) -> int:
    """The last line of the piece that starts at ``s`` (``j``: the last line that fits); see
    ``windows``. Measured on the three query kinds (bench/README "Tails"): neutral to better."""
    lo = s + (j - s) // 3
    rest = lines.size(s, e)
    for min_tail in (max_chars // 4, 0):
        best, best_k = -1, j
        for k in range(j, lo - 1, -1):
            if rest - lines.size(s, k) - 1 < min_tail:
                continue
            sc = score(k)
            if sc > best:
                best, best_k = sc, k
                if sc >= 3:
                    break
        if best >= 0:
            return best_k
    return j


def text_pieces(lines: Lines, max_chars: int) -> list[Piece]:
    """Line windows (<= max_chars, <= 60 lines) preferring blank-line breaks: the fallback for anything."""
    spans = windows(
        lines, 0, len(lines) - 1, max_chars, max_lines=TEXT_MAX_LINES, score=text_break_score(lines)
    )
    return [Piece(s, e, "text") for s, e in spans]
