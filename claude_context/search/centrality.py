"""How central each file is in the codebase's identifier graph: a prior for questions.

A question about a concept ("null-safe string operations", "how ZodType parses input") is most
often answered by the file the rest of the code leans on (``StringUtils.java``, ``core/
schemas.ts``), not by a sibling that matches the words as well (``ToStringStyle.java``,
``mini/schemas.ts``). Repository maps rank files so (Aider ranks its repo map by PageRank over the
same graph); here the measure is simpler: a file's in-degree, the number of other files using a
name it defines (from the ``refs`` table the chunker fills), on a log scale from 0 to 1. Names
defined in more than ``MAX_DEFINERS`` files (``get``, ``parse``, overloads everywhere) say nothing
about which one is meant and are left out, as are tests on either side. Languages whose uses are
not recorded (``chunkers/refs.py``: Scala, Lua, Bash today) get no prior: every file scores 0.

Computed once per chunks generation (25 ms at 48k uses); after an edit the previous map answers
while a thread computes the new one, so a search never waits for it.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections import defaultdict
from typing import TYPE_CHECKING

from claude_context.search.ranking import is_test_path

if TYPE_CHECKING:
    from claude_context.index.truth.metadata import MetadataStore

log = logging.getLogger(__name__)

MAX_DEFINERS = 3  # a name defined in more files than this is not counted (1 and 6 measure alike)

_MAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # store -> (generation, map)
_REFRESHING: weakref.WeakSet = weakref.WeakSet()
_LOCK = threading.Lock()


def file_centrality(meta: MetadataStore) -> dict[str, float]:
    """Each file's centrality (0-1; files no other file uses are left out). Never raises."""
    try:
        generation = meta.chunks_generation()
        with _LOCK:
            known = _MAPS.get(meta)
            if known is not None and known[0] != generation and meta not in _REFRESHING:
                _REFRESHING.add(meta)
                threading.Thread(target=_refresh, args=(meta, generation), daemon=True).start()
        if known is not None:
            return known[1]
        scores = compute(meta)
        with _LOCK:
            _MAPS[meta] = (generation, scores)
        return scores
    except Exception as exc:  # a closed or damaged store: no prior, the search goes on
        log.info("no file centrality (%s)", exc)
        return {}


def _refresh(meta: MetadataStore, generation: int) -> None:
    try:
        scores = compute(meta)
        with _LOCK:
            _MAPS[meta] = (generation, scores)
    except Exception as exc:
        log.info("file centrality not refreshed (%s)", exc)
    finally:
        with _LOCK:
            _REFRESHING.discard(meta)


def compute(meta: MetadataStore) -> dict[str, float]:
    """log(1 + users) / log(1 + most users) per file, from the store's definitions and uses."""
    definers: dict[str, set[str]] = defaultdict(set)
    for name, path in meta.identifiers.definition_paths():
        if not is_test_path(path):
            definers[name].add(path)
    users: dict[str, set[str]] = defaultdict(set)
    for path, name in meta.identifiers.names_used():
        targets = definers.get(name)
        if not targets or len(targets) > MAX_DEFINERS or is_test_path(path):
            continue
        for target in targets:
            if target != path:
                users[target].add(path)
    most = max((len(u) for u in users.values()), default=0)
    if not most:
        return {}
    scale = math.log1p(most)
    return {path: math.log1p(len(u)) / scale for path, u in users.items()}
