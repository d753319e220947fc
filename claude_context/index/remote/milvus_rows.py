"""What a chunk becomes in Milvus: its row, its BM25 text, and the filter expressions of a search.

``bm25_text`` passes the chunk through the same code-aware tokenizer and stemmer as the local BM25
index (``getUserName`` -> ``get user name getusernam``), its path/symbol/context terms marked, so
both stores rank keyword matches alike. Every value in an expression is escaped (``quote``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from claude_context.index.base import KeywordDoc
from claude_context.index.keyword.tokens import analyzer, code_tokens, query_tokens
from claude_context.records import sha

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from claude_context.records import SearchFilter

PATH_MAX = 4096  # bytes (Linux PATH_MAX); VARCHAR lengths in Milvus are UTF-8 bytes
TEXT_MAX = 65_535  # the VARCHAR maximum
SYMBOL_MAX = 2048
SHORT_MAX = 64
# Marks path/symbol/context terms in the one BM25 field (see ``bm25_text``). Letters only, so every
# Milvus analyzer keeps "zqparse" one token; no code token starts like this in practice.
META_PREFIX = "zq"
MAX_QUERY_TERMS = 64


def collection_name(folder: Path) -> str:
    """A valid Milvus collection name (``[A-Za-z_][A-Za-z0-9_]*``, <= 255) for a codebase folder.

    The folder name is already ``<basename>-<hash12 of the absolute root>``, so this is stable
    per root and distinct across roots."""
    return ("cc_" + re.sub(r"[^0-9A-Za-z_]", "_", folder.name))[:255]


def quote(value: str) -> str:
    """A Milvus string literal: backslash, double quote and line breaks escaped, nothing else
    interpreted, so a value can never end the literal or inject an expression."""
    escaped = (
        _clean(value)
        .replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def filter_expression(filters: SearchFilter | None, allowed_paths: set[str] | None) -> str | None:
    """The Milvus boolean expression for a search scope; None = search everything.

    Extensions, languages and the subfolder translate to indexed fields and a string range
    (``path >= "web/" and path < "web0"`` is exactly "starts with web/", with no wildcard to
    escape), so their size does not depend on the codebase. Gitignore-style globs have no Milvus
    equivalent: they use the paths the engine resolved from SQLite (one entry per file, never per
    chunk).
    """
    if allowed_paths is None:
        return None
    if filters is not None and not (filters.include_globs or filters.exclude_globs):
        parts = []
        prefix = filters.subfolder.strip("/")
        if prefix and prefix != ".":
            parts.append(f"(path >= {quote(prefix + '/')} and path < {quote(prefix + '0')})")
        exts = sorted({"." + e.lower().lstrip(".") for e in filters.extensions if e.strip(".")})
        if exts:
            parts.append(f"extension in [{', '.join(quote(e) for e in exts)}]")
        langs = sorted({lang.lower() for lang in filters.languages if lang})
        if langs:
            parts.append(f"language in [{', '.join(quote(lang) for lang in langs)}]")
        if parts:
            return " and ".join(parts)
    return f"path in [{', '.join(quote(p) for p in sorted(allowed_paths))}]"


def _clean(text: str) -> str:
    """Valid UTF-8 for the wire (lone surrogates from undecodable file names become U+FFFD)."""
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def _fit(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return data.decode("utf-8") if not text.isascii() else text
    return data[:max_bytes].decode("utf-8", "ignore")


_analyzer_local = threading.local()


def _stem(tokens: list[str]) -> list[str]:
    """The local BM25 index's analyzer (lowercase + English stemmer) over pre-split tokens."""
    if not tokens:
        return []
    stemmer = getattr(_analyzer_local, "analyzer", None)
    if stemmer is None:
        stemmer = _analyzer_local.analyzer = analyzer()
    return list(stemmer.analyze(" ".join(tokens)))


def bm25_text(doc: KeywordDoc) -> str:
    """What Milvus's BM25 function indexes for a chunk: the stemmed code-aware tokens of its
    content, then those of its path/symbol/context with the ``META_PREFIX`` mark.

    The local index keeps path/symbol/context in a second BM25 field; one Milvus sparse field
    (what ``hybrid_search`` fuses with the dense one) gets the same effect from marked terms:
    they have their own document frequencies, so a symbol match is scored like a match in a
    separate field (measured on the public eval sets: as good as two fields, where repeating
    unmarked terms lost ~5 points of keyword hit@10).
    """
    body = _stem(code_tokens(doc.content))
    meta = _stem(code_tokens(f"{doc.path} {doc.symbol} {doc.context}"))
    text = " ".join([*body, *(META_PREFIX + t for t in meta)])
    if len(text) > TEXT_MAX:
        text = text[:TEXT_MAX].rsplit(" ", 1)[0]
    return _fit(text, TEXT_MAX)


def query_text(query: str) -> str:
    """The BM25 query: the tokens the local index would look up, plain and marked (a query term
    may match a chunk's content or its path/symbol/context)."""
    stems = list(dict.fromkeys(_stem(query_tokens(query))))[:MAX_QUERY_TERMS]
    return " ".join([*stems, *(META_PREFIX + t for t in stems)])


def chunk_row(doc: KeywordDoc, vector: np.ndarray | None) -> dict[str, Any]:
    """A chunk's row; ``vector`` None = its vector is still being computed (progressive indexing):
    the row is keyword-searchable now and holds a zero placeholder that dense search filters out."""
    return {
        "id": int(doc.id),
        "path": _fit(doc.path, PATH_MAX),
        "extension": _fit(PurePosixPath(doc.path).suffix.lower(), SHORT_MAX),
        "language": _fit(doc.language or "text", SHORT_MAX),  # detect_language(path), as scope uses
        "symbol": _fit(doc.symbol, SYMBOL_MAX),
        "kind": _fit(doc.kind, SHORT_MAX),
        "start_line": int(doc.start_line),
        "end_line": int(doc.end_line),
        "content_hash": sha(doc.content),
        "content": _fit(doc.content, TEXT_MAX),
        "bm25_text": bm25_text(doc),
        "dense": np.asarray(vector, dtype=np.float32) if vector is not None else None,
        "has_vector": vector is not None,
    }


ROW_FIELDS = (
    "id",
    "path",
    "extension",
    "language",
    "symbol",
    "kind",
    "start_line",
    "end_line",
    "content_hash",
    "content",
    "bm25_text",
    "dense",
    "has_vector",
)


def query_vector(vector: np.ndarray) -> list[float]:
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(q))
    return (q / norm if norm > 0 else q).tolist()


def with_vector(expr: str | None) -> str:
    """Dense search only sees rows whose vector is real (not a progressive-indexing placeholder)."""
    return f"has_vector == true and ({expr})" if expr else "has_vector == true"


def id_expression(ids: Iterable[int] | None) -> str | None:
    if ids is None:
        return None
    return f"id in [{', '.join(str(int(i)) for i in sorted(ids))}]"


def collection_schema(client: MilvusClient, dim: int) -> Any:
    """The collection's fields: one row per chunk, its vector, and Milvus's BM25 over ``bm25_text``."""
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("path", DataType.VARCHAR, max_length=PATH_MAX)
    schema.add_field("extension", DataType.VARCHAR, max_length=SHORT_MAX)
    schema.add_field("language", DataType.VARCHAR, max_length=SHORT_MAX)
    schema.add_field("symbol", DataType.VARCHAR, max_length=SYMBOL_MAX)
    schema.add_field("kind", DataType.VARCHAR, max_length=SHORT_MAX)
    schema.add_field("start_line", DataType.INT64)
    schema.add_field("end_line", DataType.INT64)
    schema.add_field("content_hash", DataType.VARCHAR, max_length=SHORT_MAX)
    schema.add_field("content", DataType.VARCHAR, max_length=TEXT_MAX)
    schema.add_field(
        "bm25_text",
        DataType.VARCHAR,
        max_length=TEXT_MAX,
        enable_analyzer=True,
        analyzer_params={"tokenizer": "standard"},
    )
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("has_vector", DataType.BOOL)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["bm25_text"],
            output_field_names=["sparse"],
        )
    )
    return schema
