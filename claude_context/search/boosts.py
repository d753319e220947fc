"""File-level and query-type evidence added on top of the fused chunk scores.

Agents ask for files as much as for lines: "RouterGroup", "JSON response rendering", "how are
routes registered". The fused dense + BM25 score is per chunk; these adjustments bring in what a
chunk alone does not show (each one a ``RankSettings`` knob, measured in ``bench/README.md``):

- a query that names a symbol ranks the chunk that *defines* it first: a bare identifier at full
  strength, identifiers embedded in a sentence at half (``definition_boost``);
- a sentence's words that name the file or its folder (``render/json.go`` for "JSON response
  rendering") lift that file's chunks (``path_boost``);
- a file with several matching chunks lifts its best one (``file_coherence``);
- a file close to the query as a whole (the mean of its chunks' static vectors) lifts its best
  chunk (``static_file_weight``: ``lift_files``);
- path priors: re-export barrels, compat shims, examples, amalgamated copies and declaration
  stubs weigh less than the code they mirror (tests have their own ``test_weight``);
- saturation: each further chunk of a file already ranked counts less (``file_saturation``), so
  the top ten cover several files unless one file really answers everything.

All of it is O(candidates): nothing here scans the index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from claude_context.index.keyword.tokens import STOP_WORDS, code_tokens
from claude_context.records import NON_DEFINITION_KINDS

# A query that is one identifier, maybe qualified: Serialize, basic_format_args, Sinatra::Base,
# z.object, self->field, fmt::format, response.
_SYMBOL_QUERY = re.compile(r"^\s*[A-Za-z_$][\w$]*(?:(?:::|->|\.|#|\\)[A-Za-z_$][\w$]*)*\s*(?:\(\))?\s*$")
# Identifiers inside a sentence that are clearly code: PascalCase with an inner capital
# (ZodType, StateManager), camelCase (safeParse), snake_case (format_to), or backticked.
_EMBEDDED = re.compile(
    r"`([^`\s]+)`"
    r"|\b([A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*|[a-z][a-z0-9]*[A-Z][A-Za-z0-9]*|[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+)\b"
)
_QUALIFIERS = re.compile(r"::|->|\.|#|\\")

# Path priors: (pattern, setting name); a path may match several.
_BARREL_FILES = re.compile(r"(^|/)(__init__\.py|package-info\.java|mod\.ts|index\.d\.ts)$")
_ASIDE_DIRS = re.compile(
    r"(^|/)(compat|_compat|legacy|examples?|_examples?|docs?_src|single_include|vendor|third_party)/", re.I
)
_STUB_FILES = re.compile(r"\.d\.[cm]?ts$")


# Leading words of a question about where or how something is done.
_QUESTION_WORDS = frozenset(
    {"how", "where", "what", "which", "why", "when", "does", "do", "is", "are", "can"}
)
# A leading word that is code or an acronym (ZodError, Ecto.Query, JSON, WebSocket), not a verb.
_CODE_WORD = re.compile(r"^(?:[A-Z][a-z0-9]+[A-Z]\w*|[A-Za-z_]\w*(?:\.|::)\w+|[A-Z]{2,}[a-z]?)$")


@dataclass(frozen=True, slots=True)
class QueryInfo:
    """What the query says about itself: the symbol names it spells and its plain words."""

    symbol_query: bool  # the whole query is one (maybe qualified) identifier
    names: frozenset[str]  # identifiers whose definitions to favour (as typed)
    words: frozenset[str]  # lower-case content words, for path matching


@lru_cache(maxsize=256)
def analyze(query: str) -> QueryInfo:
    """The query's names and words (cached: the candidate pool, the definition lookup and the
    ranking each ask, once per search)."""
    text = query.strip()
    if _SYMBOL_QUERY.match(text):
        ident = text.removesuffix("()").strip()
        names = {ident, _QUALIFIERS.split(ident)[-1]}
        return QueryInfo(True, frozenset(n for n in names if n), frozenset(_words(ident)))
    names = set()
    for m in _EMBEDDED.finditer(text):
        token = (m.group(1) or m.group(2) or "").strip("()`:,;.")
        if token:
            names.add(_QUALIFIERS.split(token)[-1].strip("()"))
    return QueryInfo(False, frozenset(n for n in names if n), frozenset(_words(text)))


def seeks_files(query: str, info: QueryInfo) -> bool:
    """True for a question or a lower-case topic phrase ("how are routes registered", "JSON
    response rendering"): the asker wants files. A doc comment's sentence ("Return the current
    context.") or a bare identifier wants one definition. Measured on the eval sets: 0 of 394 doc
    queries, 156 of 163 agent questions and topics, 31 of 200 commit subjects."""
    text = query.strip()
    if info.symbol_query or not text or text.endswith("."):
        return False
    first = text.split()[0]
    return (
        text.endswith("?")
        or first.lower() in _QUESTION_WORDS
        or text[0].islower()
        or bool(_CODE_WORD.match(first.rstrip(",:")))
    )


def _words(text: str) -> list[str]:
    return [w for w in code_tokens(text) if len(w) > 2 and w not in STOP_WORDS and not w.isdigit()]


def _norm_name(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def stem_matches(stem: str, name: str) -> bool:
    """A file stem that names the symbol: ``HttpTimeout.kt``, ``show_exceptions.rb`` for
    ShowExceptions, ``schemas.ts`` for Schema (plural)."""
    s, n = _norm_name(stem), _norm_name(name)
    return bool(s) and (s == n or s.rstrip("s") == n or s == n.rstrip("s"))


def split_path(path: str) -> tuple[str, str]:
    """(file stem, parent folder name) of a relative path; the stem stops at the first dot
    (``format-inl.h`` -> ``format-inl``, ``schemas.test.ts`` -> ``schemas``)."""
    parts = path.rsplit("/", 2)
    name = parts[-1]
    parent = parts[-2] if len(parts) > 1 else ""
    return name.split(".", 1)[0] if not name.startswith(".") else name, parent


def defines(kind: str, symbol: str, content: str, names: Iterable[str]) -> bool:
    """True when a chunk of this kind and symbol path defines one of ``names`` (exact case, or
    any case for an all-lower-case name the user typed loosely) and spells it: of a namespace
    split around its methods, only the piece with the header counts."""
    if kind in NON_DEFINITION_KINDS or not symbol:
        return False
    last = re.split(r"::|\.|#", symbol)[-1]
    if last.lower() not in content.lower():
        return False
    return any(last == name or symbol == name or (name.islower() and last.lower() == name) for name in names)


def path_words(path: str) -> set[str]:
    stem, parent = split_path(path)
    return set(code_tokens(stem)) | set(code_tokens(parent))


def path_overlap(words: frozenset[str], parts: set[str]) -> int:
    """Query words naming a path part, a shared prefix of 3+ characters counting
    (``dependency`` ~ ``dependencies``, ``render`` ~ ``renderer``)."""
    n = 0
    for w in words:
        if w in parts:
            n += 1
            continue
        for p in parts:
            short, long_ = (w, p) if len(w) <= len(p) else (p, w)
            if len(short) >= 3 and long_.startswith(short):
                n += 1
                break
    return n


def path_prior(path: str, barrel: float, aside: float, stub: float) -> float:
    """Multiplier for where a file sits: barrels, shims/examples/vendored copies, stubs."""
    w = 1.0
    if barrel != 1.0 and _BARREL_FILES.search(path):
        w *= barrel
    if aside != 1.0 and _ASIDE_DIRS.search(path):
        w *= aside
    if stub != 1.0 and _STUB_FILES.search(path):
        w *= stub
    return w


_VERSION_DIR = re.compile(r"(?:^|/)v(\d{1,3})/")


def superseded(paths: Iterable[str], query: str) -> set[str]:
    """Paths inside a version folder (``src/v3/``) whose parent also holds a newer one (``src/v4/``)
    among ``paths``: a legacy API kept beside the current one. A query that names the version
    ("v3 compatibility errors", "version 3") keeps it."""
    by_parent: dict[str, dict[int, list[str]]] = {}
    for p in set(paths):
        matches = list(_VERSION_DIR.finditer(p))
        if matches:
            found = matches[-1]  # the innermost version folder
            parent = p[: found.start(1) - 1]
            by_parent.setdefault(parent, {}).setdefault(int(found.group(1)), []).append(p)
    out: set[str] = set()
    for versions in by_parent.values():
        newest = max(versions)
        for v, members in versions.items():
            if v < newest and not re.search(rf"\b(?:v|version\s*){v}\b", query, re.I):
                out.update(members)
    return out


def _best_per_file(scores: dict[int, float], paths: dict[int, str]) -> dict[str, int]:
    best: dict[str, int] = {}
    for cid, s in scores.items():
        p = paths[cid]
        if p not in best or s > scores[best[p]]:
            best[p] = cid
    return best


def lift_files(
    scores: dict[int, float], paths: dict[int, str], closeness: dict[int, float], share: float
) -> None:
    """Lift each file's best chunk by ``share`` of the top score times the file's ``closeness``
    (0-1, given per chunk id: ``StaticVectors.file_scores``), in place."""
    if not share or not scores:
        return
    top = max(scores.values())
    if top <= 0:
        return
    for cid in _best_per_file(scores, paths).values():
        scores[cid] += share * top * closeness.get(cid, 0.0)


def coherence(scores: dict[int, float], paths: dict[int, str], share: float) -> None:
    """Lift each file's best chunk by ``share`` of the top score, scaled by the file's summed
    score against the best file's (in place): several matching chunks are file-level evidence."""
    if not share or not scores:
        return
    top = max(scores.values())
    if top <= 0:
        return
    total: dict[str, float] = {}
    for cid, s in scores.items():
        total[paths[cid]] = total.get(paths[cid], 0.0) + max(s, 0.0)
    most = max(total.values()) or 1.0
    for p, cid in _best_per_file(scores, paths).items():
        scores[cid] += share * top * total[p] / most


def saturate(
    ranked: list[tuple[object, float]],
    spans: list[tuple[str, int, int]],
    free: int,
    decay: float,
    gaps: tuple[int, int],
) -> list[int]:
    """Order (indexes into ``ranked``, best first) after decaying each file's chunks beyond its
    first ``free`` results by ``decay`` per extra result. A chunk within the merge gap of one
    already counted (``gaps``: the first result's, the others') will merge into that result
    rather than take a rank of its own: it keeps its score and counts nothing."""
    if decay >= 1.0:
        return list(range(len(ranked)))
    placed: dict[str, list[list[int]]] = {}
    eff = []
    for i, ((_, s), (path, start, end)) in enumerate(zip(ranked, spans, strict=True)):
        have = placed.setdefault(path, [])
        near = None
        for span in have:
            gap = gaps[0] if span[2] == 0 else gaps[1]
            if start <= span[1] + 1 + gap and end >= span[0] - 1 - gap:
                near = span
                break
        if near is not None:
            near[0], near[1] = min(near[0], start), max(near[1], end)
            eff.append((s, i))
            continue
        n = len(have)
        have.append([start, end, i])
        eff.append((s * decay ** max(0, n + 1 - free) if s > 0 else s, i))
    eff.sort(key=lambda t: (-t[0], t[1]))
    return [i for _, i in eff]
