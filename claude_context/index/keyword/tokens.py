"""Code-aware tokens for BM25, shared by the local tantivy index and the Milvus store.

``code_tokens`` splits identifiers (``getUserName``, ``get_user_name`` and "get user name" meet);
``analyzer`` is the tantivy analyzer both sides apply after it (lowercase + English stemmer).
"""

from __future__ import annotations

import re
import string

import tantivy
from tantivy import Filter, TextAnalyzerBuilder, Tokenizer

_RUN_RE = re.compile(r"\w+")
# Sub-words of one ASCII identifier (underscores match no alternative, so they separate):
#   URLs/IDs (plural acronym) | HTTP, HTTP2, MD5 (acronym, stops before a Capitalized word)
#   | get, User, utf8, base64 (word with trailing digits) | 404, 0xff, 3d (digits first)
_SUB_RE = re.compile(r"[A-Z]{2,}s(?![a-z])|[A-Z]+(?![a-z])[0-9]*|[A-Z]?[a-z]+[0-9]*|[0-9]+[a-z]*")
_MIN_LEN = 2  # 1-char tokens (i, x, a single digit) are noise in code and bloat postings
_MAX_LEN = 64  # longer "words" are blobs (base64, hashes): useless as search terms
_CACHE_MAX = 500_000
_run_cache: dict[str, tuple[str, ...]] = {}
_text_cache: dict[str, str] = {}
# ASCII text: the runs of ``\w+`` are what remains after mapping every other character to a space
# (``str.translate`` + ``split`` take two thirds of the time of ``findall``).
_NON_WORD = str.maketrans(
    dict.fromkeys(set(map(chr, range(128))) - set(string.ascii_letters + string.digits + "_"), " ")
)


def _runs(text: str) -> list[str]:
    return text.translate(_NON_WORD).split() if text.isascii() else _RUN_RE.findall(text)


def _split_run(run: str) -> tuple[str, ...]:
    if run.isascii():
        if run.isalpha() and run.islower():  # the common case: self, return, value
            return (run,) if _MIN_LEN <= len(run) <= _MAX_LEN else ()
        parts = _SUB_RE.findall(run)
    else:  # non-ASCII words: no case splitting, just underscores
        parts = [p for p in run.split("_") if p]
    lowered = [p.lower() for p in parts]
    out = [p for p in lowered if _MIN_LEN <= len(p) <= _MAX_LEN]
    if len(parts) >= 2:
        whole = "".join(lowered)
        if len(whole) <= _MAX_LEN:
            out.append(whole)
    return tuple(out)


def code_tokens(text: str) -> list[str]:
    """Identifier-aware tokens: sub-words of every identifier plus its joined form.

    ``getUserName`` / ``get_user_name`` / ``GetUserName`` -> get, user, name, getusername;
    ``HTTPServer`` -> http, server, httpserver; ``utf8Decode`` -> utf8, decode, utf8decode;
    ``URLs`` -> urls. Letters keep their trailing digits (utf8, sha256, int64) because that is
    how people type them. Tokens shorter than 2 or longer than 64 characters are dropped.
    Punctuation separates tokens, so ``get-user-name`` yields get, user, name.
    """
    out: list[str] = []
    cache = _run_cache
    for run in _runs(text):
        toks = cache.get(run)
        if toks is None:
            toks = _split_run(run)
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[run] = toks
        out.extend(toks)
    return out


# Only words that carry no meaning in a natural-language question about code. Programming
# words (if, for, not, while, return, class, new, get, set, null) are deliberately kept.
_STOP_WORDS_TEXT = """
a an the this that these those of to in on at by from into onto about with without
and or but is are was were be been being am it its do does did done can could
should would will shall may might must how what where which who whom whose why when
there here their them they then than so such any some all each me my mine we our ours
you your yours he she his her him us also just very too please find show tell give
"""
STOP_WORDS: frozenset[str] = frozenset(_STOP_WORDS_TEXT.split())


def plain_tokens(text: str) -> list[str]:
    """Ablation baseline: lowercase word runs, no identifier splitting (a generic text engine)."""
    return [w.lower() for w in _RUN_RE.findall(text) if _MIN_LEN <= len(w) <= _MAX_LEN]


TOKENIZERS = {"code": code_tokens, "plain": plain_tokens}


def query_tokens(text: str, tokenize=code_tokens) -> list[str]:
    """``code_tokens`` minus English stop words, de-duplicated in first-seen order.

    If the query consists only of stop words (e.g. ``this``, a JavaScript keyword) they are
    kept: an all-stop-word query still means something to the user.
    """
    toks = list(dict.fromkeys(tokenize(text)))
    kept = [t for t in toks if t not in STOP_WORDS]
    return kept or toks


def code_token_text(text: str) -> str:
    """``" ".join(code_tokens(text))``, faster: each distinct word's tokens are cached as one string."""
    out: list[str] = []
    cache = _text_cache
    for run in _runs(text):
        toks = cache.get(run)
        if toks is None:
            toks = " ".join(_split_run(run))
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[run] = toks
        if toks:
            out.append(toks)
    return " ".join(out)


def token_texts(path: str, symbol: str, content: str, context: str, tokenize=code_tokens) -> tuple[str, str]:
    """The keyword index's two token texts of a chunk: its body, and its path, symbol and context
    (boosted). A bulk index computes them in the chunk worker processes, off the staging thread."""
    if tokenize is code_tokens:
        return code_token_text(content), code_token_text(f"{path} {symbol} {context}")
    return " ".join(tokenize(content)), " ".join(tokenize(f"{path} {symbol} {context}"))


def analyzer() -> tantivy.TextAnalyzer:
    """Whitespace split, lowercase, English stemmer: the same on documents and queries (and in the
    Milvus store's BM25 text)."""
    return (
        TextAnalyzerBuilder(Tokenizer.whitespace())
        .filter(Filter.lowercase())
        .filter(Filter.stemmer("english"))
        .build()
    )
