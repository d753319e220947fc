"""Query expansion for code BM25: what a person types versus how code spells it.

Two general, language-independent gaps (no tuning to any one repository):
- compounds: people write "context manager", "user name"; code often fuses them into one
  lowercase identifier (``contextmanager``, ``username``) that identifier splitting cannot
  separate. Adjacent query words are also tried joined.
- abbreviations: "string" vs ``str``, "configuration" vs ``cfg``/``config``, "request" vs
  ``req``. A short table of conventional programming abbreviations maps both ways.
"""

from __future__ import annotations

import itertools
import re

_ABBREVIATIONS = {
    "allocate": ["alloc"],
    "application": ["app"],
    "argument": ["arg", "args"],
    "arguments": ["args"],
    "array": ["arr"],
    "asynchronous": ["async"],
    "attribute": ["attr", "attrs"],
    "authentication": ["auth"],
    "authorization": ["auth"],
    "boolean": ["bool"],
    "buffer": ["buf"],
    "button": ["btn"],
    "calculate": ["calc"],
    "callback": ["cb"],
    "character": ["char"],
    "command": ["cmd"],
    "compare": ["cmp"],
    "configuration": ["config", "cfg", "conf"],
    "connection": ["conn"],
    "context": ["ctx"],
    "count": ["cnt"],
    "current": ["cur", "curr"],
    "database": ["db"],
    "decrement": ["dec"],
    "definition": ["def"],
    "delete": ["del"],
    "description": ["desc"],
    "destination": ["dst", "dest"],
    "dictionary": ["dict"],
    "directory": ["dir"],
    "document": ["doc"],
    "element": ["elem", "el"],
    "environment": ["env"],
    "error": ["err"],
    "event": ["evt"],
    "execute": ["exec"],
    "expression": ["expr"],
    "extension": ["ext"],
    "file": ["fd"],
    "function": ["func", "fn"],
    "generate": ["gen"],
    "identifier": ["id"],
    "image": ["img"],
    "increment": ["inc"],
    "index": ["idx"],
    "information": ["info"],
    "initialize": ["init"],
    "integer": ["int"],
    "iterator": ["iter"],
    "length": ["len"],
    "library": ["lib"],
    "management": ["mgmt"],
    "manager": ["mgr"],
    "maximum": ["max"],
    "memory": ["mem"],
    "message": ["msg"],
    "minimum": ["min"],
    "number": ["num"],
    "object": ["obj"],
    "package": ["pkg"],
    "parameter": ["param", "params"],
    "parameters": ["params"],
    "password": ["pwd", "passwd"],
    "pointer": ["ptr"],
    "position": ["pos"],
    "previous": ["prev"],
    "property": ["prop", "props"],
    "reference": ["ref"],
    "regular": ["regex"],
    "repository": ["repo"],
    "request": ["req"],
    "response": ["res", "resp"],
    "sequence": ["seq"],
    "source": ["src"],
    "specification": ["spec"],
    "statistics": ["stats"],
    "string": ["str"],
    "synchronize": ["sync"],
    "temporary": ["tmp", "temp"],
    "utility": ["util", "utils"],
    "value": ["val"],
    "variable": ["var"],
    "window": ["win"],
}
# the reverse direction: a query written with the short form also finds the long one
_REVERSE: dict[str, list[str]] = {}
for _long, _shorts in _ABBREVIATIONS.items():
    for _short in _shorts:
        _REVERSE.setdefault(_short, []).append(_long)

_WORD = re.compile(r"[A-Za-z]+")


def expansions(text: str, stop_words: frozenset[str]) -> list[str]:
    """Extra query words: joined adjacent words and abbreviation counterparts (not stemmed)."""
    words = [w.lower() for w in _WORD.findall(text)]
    out: list[str] = []
    for a, b in itertools.pairwise(words):
        if a not in stop_words and b not in stop_words and len(a) > 1 and len(b) > 1:
            out.append(a + b)
    for w in words:
        if w in stop_words:
            continue
        out.extend(_ABBREVIATIONS.get(w, ()))
        out.extend(_ABBREVIATIONS.get(w.rstrip("s"), ()) if w.endswith("s") and len(w) > 3 else ())
        out.extend(_REVERSE.get(w, ()))
    seen = set(words)
    return [w for w in dict.fromkeys(out) if w not in seen]
