"""Plain data records that flow between discovery, chunking, embedding, storage and search.

Kept free of behaviour and heavy imports so every layer (CLI, MCP, stores) can share them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path


def sha(text: str | bytes) -> str:
    """Short stable content hash (hex) used for chunks, files and the embedding cache."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file found by discovery: stat data only, nothing read yet."""

    path: str  # relative to the codebase root, POSIX separators
    abs_path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """One searchable span of a file.

    ``content`` is exactly the file's lines ``start_line..end_line`` (1-based, inclusive), so
    results can always be mapped back to the file. ``context`` holds lines that are *not* part of
    the span but explain it (e.g. the header of the class a method belongs to); it is shown and
    embedded with the chunk but never indexed as the chunk's own text.
    """

    path: str
    language: str
    start_line: int
    end_line: int
    symbol: str  # dotted symbol path, e.g. "Config.load"; "" for module-level code
    kind: str  # function, method, class, struct, interface, impl, enum, module, section, text, ...
    content: str
    context: str = ""
    signature: str = ""  # first line(s) of a definition, for find_symbol

    @property
    def content_hash(self) -> str:
        return sha(self.content)

    @property
    def name(self) -> str:
        """Last component of the symbol path ("load" for "Config.load")."""
        return self.symbol.rsplit(".", 1)[-1] if self.symbol else ""

    def embed_text(self) -> str:
        """The text given to the embedding model: a short header (path + symbol), context, content."""
        header = f"{self.path} {self.symbol}".rstrip()
        parts = [header]
        if self.context:
            parts.append(self.context)
        parts.append(self.content)
        return "\n".join(parts)


# Chunk kinds that define no name (module code, prose, text windows); a namespace chunk does (Ruby
# ``module Helpers``). Read by the definition boost and by every SQL lookup of definitions.
NON_DEFINITION_KINDS = frozenset({"module", "text", "section"})


@dataclass(frozen=True, slots=True)
class Ref:
    """A use of a name in a file (a call site, an import, a type use or an argument) or, kind
    ``definition``, a definition (nested ones too: a method of a class small enough to be one
    chunk has no chunk of its own), with its last line, symbol path and signature."""

    name: str
    line: int  # 1-based: the use's line; a definition's first line
    kind: str  # call | import | type | use | definition
    end_line: int = 0  # definitions only: last line, symbol path, signature, kind (method, class, ...)
    symbol: str = ""
    signature: str = ""
    def_kind: str = ""


@dataclass(slots=True)
class SearchFilter:
    """Restrictions applied to a search. Empty lists mean "no restriction"."""

    extensions: list[str] = field(default_factory=list)  # ".py" or "py"
    include_globs: list[str] = field(default_factory=list)  # matched against the relative path
    exclude_globs: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    subfolder: str = ""  # relative folder prefix, "" = whole codebase

    def is_empty(self) -> bool:
        return not (
            self.extensions or self.include_globs or self.exclude_globs or self.languages or self.subfolder
        )
