"""Code-aware BM25 over tantivy.

Tokenization happens in Python (``code_tokens``) for both documents and queries, so
``getUserName``, ``get_user_name``, ``GetUserName``, ``get-user-name`` and the query
``get user name`` all produce the sub-words ``get user name``; multi-part identifiers also
produce their joined form (``getusername``) so an exact identifier match outranks a scattered
one. Tantivy then only splits on whitespace, lowercases and applies the English stemmer
(``retries``/``retry`` -> ``retri``), the same analyzer on both sides.

Queries are built programmatically from term queries, never through tantivy's query parser,
so arbitrary user text (quotes, colons, ``*``, unbalanced parens, emoji) cannot raise.

Tantivy's commit model gives the "readers never see half-applied updates" property: adds and
deletes buffer in the single ``IndexWriter`` until ``commit``; searches only see committed
segments. The store generation is stamped in ``bm25.json`` after each commit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import tantivy
from filelock import FileLock
from tantivy import Document, Index, Occur, Query, SchemaBuilder

from claude_context.errors import IndexBusyError
from claude_context.index.base import Hit, KeywordDoc, KeywordIndex
from claude_context.index.files import atomic_write_json
from claude_context.index.keyword.expansion import expansions
from claude_context.index.keyword.tokens import STOP_WORDS, TOKENIZERS, analyzer, query_tokens, token_texts

__all__ = ["TantivyKeywordIndex"]

log = logging.getLogger(__name__)

# Bump when the schema or the token stream changes: an index built with another version is
# wiped on open (generation None) and rebuilt by the store from SQLite.
SCHEMA_VERSION = 3
TOKENIZER_VERSION = 1

_DIR = "bm25"
_SIDECAR = "bm25.json"
_ANALYZER = "cc_code"
_WRITER_HEAP = 64_000_000
_MAX_QUERY_TERMS = 64


# --------------------------------------------------------------------------- index


def _schema() -> tantivy.Schema:
    sb = SchemaBuilder()
    # i64, not u64: tantivy-py 0.27 builds delete terms from Python ints as i64, so
    # delete_documents_by_term silently matches nothing on an unsigned field.
    sb.add_integer_field("id", stored=False, indexed=True, fast=True)
    sb.add_text_field("path", stored=False, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("body", stored=False, tokenizer_name=_ANALYZER, index_option="freq")
    sb.add_text_field("meta", stored=False, tokenizer_name=_ANALYZER, index_option="freq")
    return sb.build()


def _is_fatal(exc: BaseException) -> bool:
    # pyo3's PanicException derives from BaseException; treat it like any other index error.
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))


class TantivyKeywordIndex(KeywordIndex):
    """BM25 over ``folder/bm25/`` (tantivy) with the committed generation in ``folder/bm25.json``.

    ``add`` replaces documents whose id is already indexed (delete-then-add in the same
    uncommitted batch), so callers need not delete first. Nothing is visible to ``search``,
    ``ids`` or ``count`` until ``commit``. Only one writer may exist per index directory across
    all processes; ``add``/``delete``/``commit`` raise ``IndexBusyError`` when another holds it.
    The writer lock is held from the first write until ``close``.
    """

    def __init__(
        self,
        folder: Path,
        *,
        meta_boost: float = 2.0,
        expansion_weight: float = 0.0,
        tokenizer: str = "code",
        writer_threads: int = 2,
    ) -> None:
        self.folder = Path(folder)
        self.meta_boost = float(meta_boost)
        self.expansion_weight = float(expansion_weight)
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"unknown keyword tokenizer {tokenizer!r}")
        self.tokenizer = tokenizer
        self._tokenize = TOKENIZERS[tokenizer]
        self.writer_threads = max(1, min(writer_threads, os.cpu_count() or 1))
        self._schema = _schema()
        self._analyzer = analyzer()
        self._lock = threading.Lock()  # guards the writer
        self._writer: tantivy.IndexWriter | None = None
        self._closed = False
        self._copy: Path | None = None  # a private copy searched when the folder is read-only
        self._index = self._open()

    # ------------------------------------------------------------------ opening

    @property
    def index_dir(self) -> Path:
        return self.folder / _DIR

    @property
    def sidecar_path(self) -> Path:
        return self.folder / _SIDECAR

    def _read_sidecar(self) -> dict[str, Any] | None:
        try:
            meta = json.loads(self.sidecar_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict):
            return None
        if (
            meta.get("schema_version") != SCHEMA_VERSION
            or meta.get("tokenizer_version") != TOKENIZER_VERSION
            or meta.get("tokenizer", "code") != self.tokenizer
        ):
            return None
        gen = meta.get("generation")
        if gen is not None and not isinstance(gen, int):
            return None
        return meta

    def _write_sidecar(self, generation: int | None) -> None:
        atomic_write_json(
            self.sidecar_path,
            {
                "schema_version": SCHEMA_VERSION,
                "tokenizer_version": TOKENIZER_VERSION,
                "tokenizer": self.tokenizer,
                "generation": generation,
            },
        )

    def _open_dir(self, path: Path | None = None) -> Index:
        index = Index(self._schema, path=str(path or self.index_dir), reuse=True)
        index.register_tokenizer(_ANALYZER, self._analyzer)
        searcher = index.searcher()  # opening segments checks their footers
        if searcher.num_docs:
            searcher.search(Query.all_query(), limit=1, count=False, order_by_field="id")
        return index

    def _open(self) -> Index:
        """Open the index, or wipe and recreate it if it is corrupt, foreign or from another version."""
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self._read_sidecar()
        if self.index_dir.exists() and meta is not None and not os.access(self.folder, os.W_OK):
            return self._open_copy()
        if self.index_dir.exists() and meta is not None:
            for attempt in range(2):
                try:
                    return self._open_dir()
                except BaseException as exc:
                    if _is_fatal(exc):
                        raise
                    if not attempt:
                        time.sleep(0.05)  # tolerate a concurrent commit replacing files
        return self._rebuild()

    def _rebuild(self) -> Index:
        """Wipe and recreate, one opener at a time (threads and processes): another opener may
        have built the index since this one looked, so look again under the lock first."""
        with FileLock(str(self.folder / ".bm25-open.lock")):
            meta = self._read_sidecar()
            if self.index_dir.exists() and meta is not None:
                try:
                    return self._open_dir()
                except BaseException as exc:
                    if _is_fatal(exc):
                        raise
                    log.warning("keyword index in %s is unreadable (%s); rebuilding", self.index_dir, exc)
            elif self.index_dir.exists():
                log.warning("keyword index in %s has no valid sidecar; rebuilding", self.index_dir)
            self._wipe()
            self._write_sidecar(None)  # first, so a concurrent opener never mistakes ours for foreign
            self.index_dir.mkdir(parents=True, exist_ok=True)
            return self._open_dir()

    def _open_copy(self) -> Index:
        """A read-only home: tantivy must write a lock file even to read, so this process searches
        a private copy (in the temp folder, removed on ``close``)."""
        self._copy = Path(tempfile.mkdtemp(prefix="claude-context-bm25-"))
        weakref.finalize(self, shutil.rmtree, self._copy, True)  # also at exit, closed or not
        target = self._copy / _DIR
        shutil.copytree(self.index_dir, target, ignore=shutil.ignore_patterns(".tantivy-*.lock"))
        log.info("keyword index in %s is read-only: searching a copy in %s", self.index_dir, target)
        return self._open_dir(target)

    def _wipe(self) -> None:
        shutil.rmtree(self.index_dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.sidecar_path.unlink()

    # ------------------------------------------------------------------ writing

    def _get_writer(self) -> tantivy.IndexWriter:
        if self._closed:
            raise RuntimeError("keyword index is closed")
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=_WRITER_HEAP, num_threads=self.writer_threads)
            except ValueError as exc:
                if "LockBusy" in str(exc):
                    raise IndexBusyError(
                        f"another process is writing the keyword index in {self.index_dir}"
                    ) from exc
                raise
        return self._writer

    def _delete_query(self, ids: Sequence[int]) -> Query:
        return Query.term_set_query(self._schema, "id", list(ids))

    def add(self, docs: Sequence[KeywordDoc]) -> None:
        """Buffer documents (replacing any with the same id) until ``commit``."""
        if not docs:
            return
        docs = list({int(d.id): d for d in docs}.values())  # last copy of a repeated id wins
        prepared = []
        for d in docs:
            if d.tokens is not None and d.tokens[0] == self.tokenizer:
                body, meta = d.tokens[1], d.tokens[2]
            else:
                body, meta = token_texts(d.path, d.symbol, d.content, d.context, self._tokenize)
            doc = Document()
            doc.add_integer("id", int(d.id))
            doc.add_text("path", d.path)
            doc.add_text("body", body)
            doc.add_text("meta", meta)
            prepared.append(doc)
        with self._lock:
            writer = self._get_writer()
            # One delete op for the batch, stamped before the adds, so it only hits older copies.
            writer.delete_documents_by_query(self._delete_query([int(d.id) for d in docs]))
            for doc in prepared:
                writer.add_document(doc)

    def delete(self, ids: Iterable[int]) -> None:
        ids = [int(i) for i in ids]
        if not ids:
            return
        with self._lock:
            self._get_writer().delete_documents_by_query(self._delete_query(ids))

    def commit(self, generation: int) -> None:
        """Publish buffered changes atomically, then stamp ``generation`` in the sidecar."""
        with self._lock:
            writer = self._get_writer()
            writer.commit()
            self._index.reload()
            self._write_sidecar(int(generation))

    def rollback(self) -> None:
        """Drop buffered, uncommitted changes."""
        with self._lock:
            if self._writer is not None:
                self._writer.rollback()

    def release_writer(self) -> None:
        """Drop the writer (and its directory lock) so another process can write; the next write
        opens a new one. Uncommitted changes are dropped (SQLite stays the truth)."""
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.rollback()
                del writer  # dropping the Rust writer joins its threads and frees the lock file

    def committed_generation(self) -> int | None:
        """Read from disk each time, so another process's commits are seen."""
        meta = self._read_sidecar()
        return None if meta is None else meta.get("generation")

    # ------------------------------------------------------------------ reading

    def _terms(self, query: str) -> list[str]:
        toks = query_tokens(query, self._tokenize)
        if not toks:
            return []
        stems = self._analyzer.analyze(" ".join(toks))
        return list(dict.fromkeys(stems))[:_MAX_QUERY_TERMS]

    def _expansion_terms(self, query: str, terms: list[str]) -> list[str]:
        extra = expansions(query, STOP_WORDS)
        if not extra:
            return []
        have = set(terms)
        return [t for t in dict.fromkeys(self._analyzer.analyze(" ".join(extra))) if t not in have][:32]

    def search(self, query: str, k: int, allowed_paths: set[str] | None = None) -> list[Hit]:
        """Top-k by BM25 over body + boosted meta (path, symbol, context); best first.

        Expansion terms (joined compounds, abbreviations) count with ``expansion_weight``.
        """
        self._check_open()
        if k <= 0 or (allowed_paths is not None and not allowed_paths):
            return []
        terms = self._terms(query)
        if not terms:
            return []
        weighted = [(t, 1.0) for t in terms]
        if self.expansion_weight:
            weighted += [(t, self.expansion_weight) for t in self._expansion_terms(query, terms)]
        clauses: list[tuple[Occur, Query]] = []
        for t, w in weighted:
            body_q = Query.term_query(self._schema, "body", t)
            clauses.append((Occur.Should, body_q if w == 1.0 else Query.boost_query(body_q, w)))
            meta_q = Query.term_query(self._schema, "meta", t)
            clauses.append((Occur.Should, Query.boost_query(meta_q, self.meta_boost * w)))
        q = Query.boolean_query(clauses)
        if allowed_paths is not None:
            path_q = Query.term_set_query(self._schema, "path", sorted(allowed_paths))
            # Score 0 so the filter does not shift BM25 scores.
            q = Query.boolean_query([(Occur.Must, q), (Occur.Must, Query.const_score_query(path_q, 0.0))])
        searcher = self._searcher()
        if not searcher.num_docs:
            return []
        hits = searcher.search(q, limit=k, count=False).hits
        if not hits:
            return []
        ids = searcher.fast_field_values("id", [addr for _, addr in hits])
        return [Hit(int(i), float(score)) for (score, _), i in zip(hits, ids, strict=True)]

    def ids(self) -> set[int]:
        """All committed ids, read from the fast field as sort keys (no stored-doc fetch)."""
        self._check_open()
        searcher = self._searcher()
        n = searcher.num_docs
        if not n:
            return set()
        res = searcher.search(Query.all_query(), limit=n, count=False, order_by_field="id")
        return {int(v) for v, _ in res.hits}

    def count(self) -> int:
        self._check_open()
        return int(self._searcher().num_docs)

    def _searcher(self) -> tantivy.Searcher:
        """A searcher on the latest commit, including another process's (tantivy's own file
        watcher only notices those after ~0.5 s; an explicit reload costs ~30 us)."""
        with contextlib.suppress(ValueError):  # keep the current view if a reload races a GC
            self._index.reload()
        return self._index.searcher()

    def close(self) -> None:
        """Drop uncommitted changes and release the writer lock."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            writer, self._writer = self._writer, None
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.rollback()
                del writer  # dropping the Rust writer joins its threads and frees the lock file

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("keyword index is closed")
