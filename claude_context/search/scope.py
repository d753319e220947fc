"""Turn a ``SearchFilter`` into the set of indexed paths a search may return.

The file table is small (one row per file), so resolving filters against it in Python is
fast and lets every index backend take a plain allowed-set instead of its own filter syntax.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pathspec

from claude_context.chunkers import detect_language
from claude_context.index.truth.metadata import MetadataStore
from claude_context.records import SearchFilter


def _spec(globs: list[str]) -> pathspec.PathSpec | None:
    globs = [g.strip() for g in globs if g and g.strip()]
    return pathspec.PathSpec.from_lines("gitignore", globs) if globs else None


def resolve_scope(meta: MetadataStore, filters: SearchFilter) -> set[str] | None:
    """Allowed relative paths, or None when nothing is filtered (search everything)."""
    if filters.is_empty():
        return None
    exts = {"." + e.lower().lstrip(".") for e in filters.extensions if e.strip(".")}
    langs = {lang.lower() for lang in filters.languages}
    include, exclude = _spec(filters.include_globs), _spec(filters.exclude_globs)
    prefix = filters.subfolder.strip("/")
    prefix = prefix + "/" if prefix and prefix != "." else ""
    out: set[str] = set()
    for path in meta.paths():
        if prefix and not path.startswith(prefix):
            continue
        if exts and PurePosixPath(path).suffix.lower() not in exts:
            continue
        if langs and (detect_language(path) or "text") not in langs:
            continue
        if include is not None and not include.match_file(path):
            continue
        if exclude is not None and exclude.match_file(path):
            continue
        out.add(path)
    return out
