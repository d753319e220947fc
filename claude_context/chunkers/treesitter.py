"""Generic tree-sitter chunker driven by the ``LangSpec`` tables in ``languages.py`` (types in ``spec.py``).

Only the top-level children of the file (and of the bodies of definitions that must be split)
are visited, never the whole tree, so the cost is dominated by the C parser. Lines are the unit
of ownership: every definition claims a line span (plus the comments/decorators directly above
it), the lines in between are the container's own code (module code at the top level, header
and fields for a class), and the result is a flat, sorted, non-overlapping list of ``Piece``.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from tree_sitter import Parser
from tree_sitter_language_pack import get_parser

from .spec import CLASS_LIKE, DEFAULT, TRANSPARENT, ClassifyResult, Def, LangSpec, generic_def
from .text import Lines, Piece, windows

_local = threading.local()

# Lines made only of these tokens close a block; they are glued to the previous chunk.
_CLOSERS = frozenset("})];,( \t")
_CLOSER_WORDS = frozenset({"end", "fi", "done", "esac", "?>", "end;", "end)", "end,"})
_WHITESPACE = frozenset(b" \t\r\n\f\v")
_SIG_SKIP = ("@", "#[", "[", "//", "/*", "*", "#", "--")
_MAX_HEADER_LINES = 6
_PARSE_SECONDS = 3.0
_PARSE_BYTES_PER_SECOND = 256 * 1024
_MAX_SIG_CHARS = 300


def parser_for(grammar: str) -> Parser:
    """One parser per (thread, grammar): tree-sitter parsers must not be shared across threads."""
    cache: dict[str, Parser] | None = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    parser = cache.get(grammar)
    if parser is None:
        parser = cache[grammar] = get_parser(grammar)  # type: ignore[arg-type]
    return parser


def parse_with_deadline(grammar: str, src: bytes) -> Any:
    """Parse, giving up (ValueError) when error recovery on a pathological file runs away.

    The budget is generous (typical code parses at >10 MB/s); the caller falls back to line windows.
    """
    parser = parser_for(grammar)
    deadline = time.perf_counter() + _PARSE_SECONDS + len(src) / _PARSE_BYTES_PER_SECOND

    def read(offset: int, _point: Any) -> bytes:
        return src[offset : offset + 65536]

    def expired(*_state: Any) -> bool:
        return time.perf_counter() > deadline

    try:
        return parser.parse(read, progress_callback=expired)
    except ValueError:
        parser.reset()
        raise


def _line_starts(lines: list[str], text: str) -> list[int]:
    """Byte offset where each ``splitlines()`` line starts, to map tree-sitter bytes to lines."""
    starts = [0] * len(lines)
    pos = 0
    ascii_only = text.isascii()
    for i, line in enumerate(text.splitlines(keepends=True)):
        starts[i] = pos
        pos += len(line) if ascii_only else len(line.encode("utf-8", "surrogatepass"))
    return starts


def _is_closer(line: str) -> bool:
    """``}``, ``});``, ``end``, ``#endif``, ``}  // namespace foo``: a line that only closes blocks."""
    s = line.strip()
    if s.startswith("#endif"):
        return True
    for marker in ("//", "/*", "--", " #"):
        cut = s.find(marker)
        if cut > 0:
            s = s[:cut].rstrip()
    return not s or s in _CLOSER_WORDS or all(ch in _CLOSERS for ch in s)


@dataclass(slots=True)
class _Scope:
    """Where definitions are being laid out: the enclosing symbol, context and own-line metadata."""

    prefix: str  # symbol path of the container ("" at the top level)
    context: str  # context for members (headers of all enclosing definitions)
    kind: str  # kind of the container's own lines ("module" at the top level)
    signature: str
    header_context: str  # context of the container's first own-line chunk (the one with its header)
    parent_kind: str  # decides function vs method


class TreeSitterChunker:
    """Chunks one file; create one per file (holds its lines and byte offsets)."""

    def __init__(
        self, spec: LangSpec, text: str, lines: Lines, max_chars: int, module_chars: int | None = None
    ) -> None:
        self.spec = spec
        self.lines = lines
        self.max_chars = max(1, max_chars)
        self.module_chars = max(1, min(module_chars or max_chars, self.max_chars))
        self.src = text.encode("utf-8", "surrogatepass")
        self.starts = _line_starts(lines.lines, text)
        self.has_error = False  # set by pieces(): the parse tree holds ERROR nodes

    # ----------------------------------------------------------------- public

    def pieces(self) -> list[Piece]:
        tree = parse_with_deadline(self.spec.grammar, self.src)
        self.has_error = tree.root_node.has_error
        out: list[Piece] = []
        if not self.lines.lines:
            return out
        scope = _Scope("", "", "module", "", "", "module")
        self._layout(self._collect(tree.root_node), 0, len(self.lines) - 1, scope, out)
        return self._glue_comments(self._merge_closers(out))

    # ----------------------------------------------------------------- classification

    def classify(self, node: Any) -> ClassifyResult:
        spec = self.spec
        t = node.type
        if t in spec.transparent:
            return TRANSPARENT
        hook = spec.hooks.get(t)
        if hook is not None:
            found = hook(node, self)
            if found is not DEFAULT:
                return found
        if t in spec.wrappers:
            for child in node.named_children:
                found = self.classify(child)
                if isinstance(found, Def):
                    found.node = node
                    return found
            return None
        kind = spec.defs.get(t)
        return generic_def(node, spec, kind) if kind is not None else None

    def _collect(self, parent: Any) -> list[Def]:
        out: list[Def] = []
        stack = [iter(parent.children)]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                continue
            if not child.is_named:
                continue
            found = self.classify(child)
            if found is TRANSPARENT:
                stack.append(iter(child.children))
            elif isinstance(found, Def):
                out.append(found)
        return out

    # ----------------------------------------------------------------- lines

    def line_of(self, byte: int) -> int:
        return bisect_right(self.starts, byte) - 1

    def span_of(self, node: Any) -> tuple[int, int]:
        """First and last line of a node, ignoring whitespace some grammars include at the end."""
        start_byte = node.start_byte
        end_byte = node.end_byte
        src = self.src
        while end_byte > start_byte and src[end_byte - 1] in _WHITESPACE:
            end_byte -= 1
        start = self.line_of(start_byte)
        return start, max(start, self.line_of(end_byte - 1))

    def _starts_line(self, node: Any) -> bool:
        line_start = self.starts[self.line_of(node.start_byte)]
        return not self.src[line_start : node.start_byte].strip()

    # ----------------------------------------------------------------- placement

    def _place(self, defs: list[Def], lo: int, hi: int) -> list[Def]:
        """Give each definition a line span inside ``lo..hi`` including the comments above it."""
        placed: list[Def] = []
        prev_end = lo - 1
        for d in defs:
            start, end = self.span_of(d.node)
            start = max(start, prev_end + 1)
            end = min(end, hi)
            if start > end:
                continue  # shares its only line with the previous definition
            prev = placed[-1] if placed else None
            start = self._attach(d, start, prev_end + 1, prev)
            if prev is not None and start <= prev.end:  # took trailing comments of the previous block
                span = self.lines.trim(prev.start, start - 1)
                prev.end = span[1] if span else prev.start
            d.start, d.end = start, end
            placed.append(d)
            prev_end = end
        return placed

    def _attach(self, d: Def, start: int, floor: int, prev: Def | None) -> int:
        """Extend ``start`` upward over doc comments, decorators and attributes directly above."""
        spec = self.spec
        sib = d.node.prev_named_sibling
        while sib is not None and sib.type in spec.attach_types:
            s, e = self.span_of(sib)
            if e < start - 1 or s < floor or not self._starts_line(sib):
                break
            start = min(start, s)
            sib = sib.prev_named_sibling
        start = self._attach_text(start, floor)
        if prev is not None and start == floor and floor > prev.start + 1:
            trail = self._trailing_comment_line(prev.node)
            if trail is not None and trail < floor:
                start = self._attach_text(start, max(trail, prev.start + 1))
        return start

    def _attach_text(self, start: int, floor: int) -> int:
        """Comment lines found by their text: robust to grammars that swallow comments elsewhere."""
        spec = self.spec
        lines = self.lines.lines
        first = start
        while start - 1 >= floor:
            line = lines[start - 1].strip()
            if not line and start == first and spec.block_comment == ("/*", "*/") and start - 2 >= floor:
                # A JSDoc/Javadoc block one blank line above still documents the definition (express style).
                doc = self._block_start(start - 2, floor, ("/**", "*/"))
                return doc if doc is not None else start
            if not line or line.startswith("#!"):
                break
            if line.startswith(spec.line_comments):
                start -= 1
                continue
            block = spec.block_comment
            if block is not None:
                opener = self._block_start(start - 1, floor, block)
                if opener is not None:
                    start = opener
                    continue
            break
        return start

    def _block_start(self, last: int, floor: int, block: tuple[str, str]) -> int | None:
        """First line of the block comment ending on line ``last``, if it starts its own line."""
        lines = self.lines.lines
        if not lines[last].rstrip().endswith(block[1]):
            return None
        k = last
        while k >= floor and k >= last - 400:
            if block[0] in lines[k] or (block[0] == "/**" and "/*" in lines[k]):
                break
            k -= 1
        if k >= floor and lines[k].strip().startswith(block[0]):
            return k
        return None

    def _trailing_comment_line(self, node: Any) -> int | None:
        """First line of the comments a block ends with: Python and Scala blocks swallow the comments
        that document the next definition."""
        types = self.spec.attach_types
        cur = node
        for _ in range(16):
            children = cur.children
            if not children:
                return None
            i = len(children) - 1
            if children[i].type in types:
                while i >= 0 and children[i].type in types:
                    i -= 1
                return self.line_of(children[i + 1].start_byte)
            cur = children[i]
        return None

    # ----------------------------------------------------------------- signature / header

    def _sig_start(self, d: Def) -> int:
        start = self.line_of(d.core.start_byte)
        name_line = self.line_of(d.name_byte) if d.name_byte >= 0 else start
        if not start <= name_line <= start + 8:
            return start
        lines = self.lines.lines
        while start < name_line and lines[start].strip().startswith(_SIG_SKIP):
            start += 1
        return start

    def _signature(self, d: Def, sig_start: int) -> str:
        lines = self.lines.lines
        name_line = self.line_of(d.name_byte) if d.name_byte >= 0 else sig_start
        if not sig_start <= name_line <= sig_start + 2:
            name_line = sig_start
        sig = " ".join(lines[i].strip() for i in range(sig_start, name_line + 1))
        return sig[:_MAX_SIG_CHARS]

    def _header(self, d: Def, sig_start: int) -> str:
        """The definition's opening line(s) up to its body: context for its members and pieces."""
        end = sig_start
        body = d.body
        if body is not None and body is not d.core:
            body_line = self.line_of(body.start_byte)
            if body_line > sig_start:
                # `implements Baz {` still belongs to the header; a lone `{` or the first statement does not
                shares_line = self.src[self.starts[body_line] : body.start_byte].strip()
                end = body_line if shares_line else body_line - 1
        end = min(end, sig_start + _MAX_HEADER_LINES - 1, d.end)
        lines = self.lines.lines
        while end > sig_start and (not lines[end].strip() or lines[end].lstrip().startswith(_SIG_SKIP)):
            end -= 1  # comments between the header and the body (Ruby) are not part of the header
        return "\n".join(lines[i].rstrip()[:_MAX_SIG_CHARS] for i in range(sig_start, end + 1))

    # ----------------------------------------------------------------- layout

    def _layout(self, defs: list[Def], lo: int, hi: int, scope: _Scope, out: list[Piece]) -> None:
        cur = lo
        first = True
        for d in self._place(defs, lo, hi):
            if cur < d.start:
                self._emit_own(cur, d.start - 1, scope, first, out)
            first = False
            self._emit_def(d, scope, out)
            cur = d.end + 1
        if cur <= hi:
            self._emit_own(cur, hi, scope, first, out)

    def _emit_own(self, start: int, end: int, scope: _Scope, first: bool, out: list[Piece]) -> None:
        """The container's own lines: module code, or a class header / fields / closing brace."""
        if scope.kind == "module" and self.has_error:
            for s, e, orphan in self._orphan_runs(start, end):
                if orphan:  # a body the parser lost its header for: chunked like a function body
                    for ws, we in windows(self.lines, s, e, self.max_chars):
                        out.append(Piece(ws, we, "block", "", "", ""))
                else:
                    self._emit_layout_lines(s, e, scope, first, out)
                first = False
            return
        self._emit_layout_lines(start, end, scope, first, out)

    def _orphan_runs(self, start: int, end: int) -> list[tuple[int, int, bool]]:
        """Split module-level lines of a file with parse errors into runs of column-0 code and runs
        of indented code. Indented lines at the top level belong to a definition whose opening the
        parser could not read (a half-typed signature, a merge conflict): they are code, not module
        layout. Blank and closing lines join the run they follow."""
        runs: list[tuple[int, int, bool]] = []
        lines = self.lines.lines
        for i in range(start, end + 1):
            line = lines[i]
            if runs and (not line.strip() or _is_closer(line)):
                runs[-1] = (runs[-1][0], i, runs[-1][2])
                continue
            orphan = line[:1] in (" ", "\t")
            if runs and runs[-1][2] == orphan:
                runs[-1] = (runs[-1][0], i, orphan)
            else:
                runs.append((i, i, orphan))
        return runs

    def _emit_layout_lines(self, start: int, end: int, scope: _Scope, first: bool, out: list[Piece]) -> None:
        lines = self.lines
        budget = self.max_chars
        if scope.kind == "module":
            # module-level code (imports, constants, exported bindings) in small groups: each
            # binding is findable on its own instead of drowning in a page of imports
            budget = self.module_chars
        spans = windows(lines, start, end, budget)
        if not spans:
            return
        trivial = all(_is_closer(lines.lines[i]) for i in range(spans[0][0], spans[-1][1] + 1))
        for i, (s, e) in enumerate(spans):
            ctx = scope.header_context if first and i == 0 else scope.context
            out.append(Piece(s, e, scope.kind, scope.prefix, ctx, scope.signature, trivial))

    def _emit_def(self, d: Def, scope: _Scope, out: list[Piece]) -> None:
        symbol, kind = qualify(d, scope.prefix, scope.parent_kind)
        sig_start = min(self._sig_start(d), d.end)
        signature = self._signature(d, sig_start)
        size = self.lines.size(d.start, d.end)
        fits = size <= self.max_chars
        if fits and not d.always_split:
            out.append(Piece(d.start, d.end, kind, symbol, scope.context, signature))
            return
        header = self._header(d, sig_start)
        inner_ctx = f"{scope.context}\n{header}" if scope.context else header
        if d.body is not None and d.start < d.end:
            members = self._collect(d.body)
            if members:
                sub = _Scope(symbol, inner_ctx, kind, signature, scope.context, kind)
                self._layout(members, d.start, d.end, sub, out)
                return
        if fits:
            out.append(Piece(d.start, d.end, kind, symbol, scope.context, signature))
            return
        for i, (s, e) in enumerate(windows(self.lines, d.start, d.end, self.max_chars)):
            out.append(Piece(s, e, kind, symbol, scope.context if i == 0 else inner_ctx, signature))

    def _glue_comments(self, pieces: list[Piece]) -> list[Piece]:
        """A short comment standing alone between definitions (a section rule ``# --- search``,
        a ``// MARK:``, a note one blank line above a method) joins the chunk after it, else the
        one before it, when it stays in budget: alone it is a one-line result that carries its
        class's name and answers nothing."""
        out: list[Piece] = []
        for i, p in enumerate(pieces):
            if not self._comment_only(p):
                out.append(p)
                continue
            nxt = pieces[i + 1] if i + 1 < len(pieces) else None
            if (
                nxt is not None
                and all(self.lines.blank[k] for k in range(p.end + 1, nxt.start))
                and self._indent(p) == self._indent(nxt)  # a class's last note is not the next def's
                and self.lines.size(p.start, nxt.end) <= self.max_chars
            ):
                nxt.start = p.start
            elif out and out[-1].end < p.start and self.lines.size(out[-1].start, p.end) <= self.max_chars:
                out[-1].end = p.end
            else:
                out.append(p)
        return out

    def _indent(self, p: Piece) -> int:
        first = self.lines.trim(p.start, p.end)
        return self.lines.indent(first[0]) if first else 0

    def _comment_only(self, p: Piece, most: int = 3) -> bool:
        """Whether ``p`` holds nothing but at most ``most`` comment lines (and blank ones)."""
        spec = self.spec
        block = spec.block_comment
        starts = spec.line_comments + ((block[0], "*") if block else ())
        text = [ln.strip() for ln in self.lines.lines[p.start : p.end + 1] if ln.strip()]
        if not text or len(text) > most:
            return False
        return all(ln.startswith(starts) or (block is not None and ln.endswith(block[1])) for ln in text)

    def _merge_closers(self, pieces: list[Piece]) -> list[Piece]:
        """Glue lone closing lines (``}``, ``end``) to the previous chunk when it stays in budget."""
        out: list[Piece] = []
        for p in pieces:
            if p.trivial and out and self.lines.size(out[-1].start, p.end) <= self.max_chars:
                out[-1].end = p.end
                continue
            out.append(p)
        return out


def qualify(d: Def, prefix: str, parent_kind: str) -> tuple[str, str]:
    """A definition's symbol path and kind inside its container (a function of a class is a
    method): chunks and ``definitions`` name it alike, so lookups can tell one from the other."""
    symbol = f"{prefix}.{d.name}" if prefix and d.name else d.name or prefix
    return symbol, "method" if d.kind == "function" and parent_kind in CLASS_LIKE else d.kind


def definitions(spec: LangSpec, text: str, root: Any) -> list[tuple[str, str, str, int, int, str]]:
    """Every definition of a parsed file, nested ones too, as the chunker classifies them: (name,
    symbol path, kind, first line, last line (1-based), signature). A method of a class small
    enough to be one chunk has no chunk of its own; this is how ``find_symbol`` finds it."""
    chunker = TreeSitterChunker(spec, text, Lines(text), 1)
    out: list[tuple[str, str, str, int, int, str]] = []
    stack: list[tuple[list[Def], str, str]] = [(chunker._collect(root), "", "module")]
    while stack:
        defs, prefix, parent_kind = stack.pop()
        for d in defs:
            named = bool(d.name) and d.name != "<anonymous>"
            symbol, kind = qualify(d, prefix, parent_kind) if named else (prefix, d.kind)
            if named:
                start, end = chunker.span_of(d.node)
                signature = chunker._signature(d, min(chunker._sig_start(d), end))
                out.append((d.name, symbol, kind, start + 1, end + 1, signature))
            if d.body is not None:
                stack.append((chunker._collect(d.body), symbol, kind))
    out.sort(key=lambda t: (t[3], t[1]))
    return out
