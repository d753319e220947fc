"""SQLite metadata of one codebase: the source of truth for files, chunks and index state.

Vector and keyword indexes are derived from these rows (plus the embedding cache) and are
stamped with the ``generation`` they reflect, so a reopened store can tell whether they lag.
WAL mode lets readers in other processes read a consistent snapshot while one writer works.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from claude_context.db import ThreadConnections
from claude_context.errors import IndexDamagedError
from claude_context.faults import is_damage
from claude_context.index.truth.identifiers import NOT_DEFINITIONS, IdentifierIndex
from claude_context.records import Chunk

# 2: the refs table (identifier uses); 3: the defs table (every definition, nested ones too). An
# older index re-chunks once to fill them in.
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL,
    language TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'ok',      -- ok | skipped
    reason TEXT NOT NULL DEFAULT '',
    chunks INTEGER NOT NULL DEFAULT 0,
    indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    language TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    signature TEXT NOT NULL,
    context TEXT NOT NULL,
    content TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    embed_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE INDEX IF NOT EXISTS chunks_name ON chunks(name COLLATE NOCASE);
-- chunks stored (keyword-searchable) whose vectors are still being computed (progressive indexing)
CREATE TABLE IF NOT EXISTS pending_vectors (id INTEGER PRIMARY KEY);
-- where names are used (call sites, imports, type uses, arguments): replaced with a file's chunks
CREATE TABLE IF NOT EXISTS refs (
    path TEXT NOT NULL,
    line INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refs_name ON refs(name);
CREATE INDEX IF NOT EXISTS refs_path ON refs(path);
-- every definition, nested ones too (a method of a class that is one chunk): for find_symbol
CREATE TABLE IF NOT EXISTS defs (
    path TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    name TEXT NOT NULL,
    symbol TEXT NOT NULL,
    kind TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS defs_name ON defs(name COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS defs_path ON defs(path);
"""


@dataclass(frozen=True, slots=True)
class FileState:
    path: str
    size: int
    mtime_ns: int
    hash: str
    status: str = "ok"
    reason: str = ""
    language: str = ""
    chunks: int = 0


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk row as stored: the chunk plus its id and embedding-cache key."""

    id: int
    chunk: Chunk
    embed_key: str


class MetadataStore:
    """Thread-safe access to one codebase's ``index.sqlite``.

    One connection per thread (sqlite3 connections must not be shared across threads without
    care); writes go through ``transaction()`` so a batch lands completely or not at all.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cons = ThreadConnections(path)
        try:
            if self._cons.read_only and path.exists():
                self._con().execute("SELECT count(*) FROM meta").fetchone()  # a read-only home: read it
                return
            self._con().executescript(_SCHEMA)  # idempotent DDL; executescript manages its own commit
            with self.transaction() as con:
                con.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                _upgrade(con)
        except sqlite3.DatabaseError as exc:
            self._cons.close()
            if is_damage(exc):
                raise IndexDamagedError(str(exc)) from exc
            raise

    @property
    def read_only(self) -> bool:
        return self._cons.read_only

    def quick_check(self) -> str:
        """"" if SQLite's ``quick_check`` finds the file sound, else its first complaint (it reads
        every page: ~0.2 s per 100 MB, so it runs once per index run, not per search)."""
        try:
            rows = self._con().execute("PRAGMA quick_check(5)").fetchall()
        except sqlite3.DatabaseError as exc:
            return str(exc)
        problems = [str(r[0]).replace("\n", "; ") for r in rows if r and r[0] != "ok"]
        text = "; ".join(problems)
        return text if len(text) <= 200 else text[:200] + "..."

    # -- connections ---------------------------------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        return self._cons.get()

    class _Tx:
        def __init__(self, con: sqlite3.Connection) -> None:
            self.con = con

        def __enter__(self) -> sqlite3.Connection:
            self.con.execute("BEGIN IMMEDIATE")
            return self.con

        def __exit__(self, exc_type, exc, tb) -> None:
            self.con.execute("ROLLBACK" if exc_type else "COMMIT")

    def transaction(self) -> MetadataStore._Tx:
        return MetadataStore._Tx(self._con())

    def close(self) -> None:
        """Close this thread's connection."""
        self._cons.close()

    # -- meta ----------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._con().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def get_all_meta(self) -> dict[str, str]:
        return dict(self._con().execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, con: sqlite3.Connection | None = None, **values: object) -> None:
        rows = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()]
        if con is not None:
            con.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", rows)
            return
        with self.transaction() as tx:
            tx.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", rows)

    def generation(self) -> int:
        return int(self.get_meta("generation", "0") or 0)

    def chunks_generation(self) -> int:
        """The generation at which the set of chunks last changed (staged, deleted, reset): what
        is derived from the chunks alone (the static table's vectors and file centroids) stays
        valid while only their transformer vectors arrive. Stores from before it was kept: the
        generation."""
        value = self.get_meta("chunks_generation", "")
        return int(value) if value else self.generation()

    # -- files ---------------------------------------------------------------------------------
    def file_states(self) -> dict[str, FileState]:
        rows = self._con().execute(
            "SELECT path, size, mtime_ns, hash, status, reason, language, chunks FROM files"
        )
        return {r[0]: FileState(*r) for r in rows}

    def file_count(self) -> tuple[int, int]:
        """(indexed files, skipped files)."""
        row = (
            self._con()
            .execute("SELECT COALESCE(SUM(status = 'ok'), 0), COALESCE(SUM(status != 'ok'), 0) FROM files")
            .fetchone()
        )
        return int(row[0]), int(row[1])

    def skipped_files(self) -> list[tuple[str, str]]:
        """(path, reason) of the files recorded as skipped (binary, minified, unreadable, ...)."""
        return list(self._con().execute("SELECT path, reason FROM files WHERE status != 'ok' ORDER BY path"))

    def paths(self) -> list[str]:
        return [r[0] for r in self._con().execute("SELECT path FROM files WHERE status = 'ok'")]

    # -- chunks --------------------------------------------------------------------------------
    def chunk_count(self) -> int:
        return int(self._con().execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def chunk_ids(self) -> set[int]:
        return {r[0] for r in self._con().execute("SELECT id FROM chunks")}

    def embed_keys(self) -> dict[int, str]:
        """Every chunk's id and the key of its embedded text (vector caches are keyed by it)."""
        return dict(self._con().execute("SELECT id, embed_key FROM chunks"))

    def chunk_paths(self) -> dict[int, str]:
        """Every chunk's id and its file's path."""
        return dict(self._con().execute("SELECT id, path FROM chunks"))

    def chunk_ids_for_paths(self, paths: Iterable[str]) -> list[int]:
        con = self._con()
        out: list[int] = []
        for batch in _batched(list(paths), 500):
            marks = ",".join("?" * len(batch))
            out.extend(r[0] for r in con.execute(f"SELECT id FROM chunks WHERE path IN ({marks})", batch))
        return out

    def get_chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        con = self._con()
        out: dict[int, StoredChunk] = {}
        for batch in _batched(list(ids), 500):
            marks = ",".join("?" * len(batch))
            for row in con.execute(f"SELECT {_CHUNK_COLS} FROM chunks WHERE id IN ({marks})", batch):
                out[row[0]] = _row_to_stored(row)
        return out

    def iter_chunks(self, ids: Iterable[int] | None = None, batch: int = 2000) -> Iterator[list[StoredChunk]]:
        """All chunks (or the given ids) in batches, for rebuilding derived indexes."""
        con = self._con()
        if ids is None:
            last = 0
            while True:
                rows = con.execute(
                    f"SELECT {_CHUNK_COLS} FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
                ).fetchall()
                if not rows:
                    return
                last = rows[-1][0]
                yield [_row_to_stored(r) for r in rows]
        else:
            for part in _batched(sorted(ids), batch):
                yield list(self.get_chunks(part).values())

    @property
    def identifiers(self) -> IdentifierIndex:
        """Where names are used and defined (the ``refs`` and ``defs`` tables)."""
        return IdentifierIndex(self._con)

    def chunks_for_path(self, path: str) -> list[StoredChunk]:
        rows = self._con().execute(
            f"SELECT {_CHUNK_COLS} FROM chunks WHERE path = ? ORDER BY start_line", (path,)
        )
        return [_row_to_stored(r) for r in rows]

    def find_symbols(self, name: str, kind: str | None, limit: int) -> list[StoredChunk]:
        """Definitions whose name matches exactly (case-insensitive), then by prefix."""
        con = self._con()
        kind_sql, args = ("AND kind = ?", [kind]) if kind else ("", [])
        defs = f"kind NOT IN {NOT_DEFINITIONS}"
        exact = con.execute(
            f"SELECT {_CHUNK_COLS} FROM chunks WHERE (name = ? COLLATE NOCASE OR symbol = ?) AND {defs} "
            f"{kind_sql} ORDER BY (name = ?) DESC, path, start_line LIMIT ?",
            [name, name, *args, name, limit],
        ).fetchall()
        seen = {r[0] for r in exact}
        rest: list[tuple] = []
        if len(exact) < limit:
            like = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rest = [
                r
                for r in con.execute(
                    f"SELECT {_CHUNK_COLS} FROM chunks WHERE name LIKE ? ESCAPE '\\' AND {defs} {kind_sql} "
                    f"ORDER BY length(name), path, start_line LIMIT ?",
                    [like, *args, limit * 2],
                )
                if r[0] not in seen
            ]
        return [_row_to_stored(r) for r in (exact + rest)[:limit]]

    def definitions_named(self, names: Iterable[str], limit: int) -> list[tuple[int, str]]:
        """(id, path) of definition chunks whose name is one of ``names`` (any case; the caller
        checks case), through the name index: cheap whatever the index size."""
        con = self._con()
        out: list[tuple[int, str]] = []
        for name in names:
            out.extend(
                con.execute(
                    "SELECT id, path FROM chunks WHERE name = ? COLLATE NOCASE "
                    f"AND kind NOT IN {NOT_DEFINITIONS} LIMIT ?",
                    (name, limit),
                ).fetchall()
            )
        return out

    # -- writes (inside a transaction) -----------------------------------------------------------
    @staticmethod
    def delete_paths(con: sqlite3.Connection, paths: Sequence[str]) -> list[int]:
        """Remove files and their chunks; returns the removed chunk ids."""
        removed: list[int] = []
        for batch in _batched(list(paths), 500):
            marks = ",".join("?" * len(batch))
            removed.extend(r[0] for r in con.execute(f"SELECT id FROM chunks WHERE path IN ({marks})", batch))
            con.execute(f"DELETE FROM chunks WHERE path IN ({marks})", batch)
            con.execute(f"DELETE FROM files WHERE path IN ({marks})", batch)
            con.execute(f"DELETE FROM refs WHERE path IN ({marks})", batch)
            con.execute(f"DELETE FROM defs WHERE path IN ({marks})", batch)
        return removed

    @staticmethod
    def insert_chunks(con: sqlite3.Connection, chunks: Sequence[Chunk], keys: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for c, key in zip(chunks, keys, strict=True):
            cur = con.execute(
                "INSERT INTO chunks(path, language, start_line, end_line, symbol, name, kind, signature, "
                "context, content, content_hash, embed_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    c.path,
                    c.language,
                    c.start_line,
                    c.end_line,
                    c.symbol,
                    c.name,
                    c.kind,
                    c.signature,
                    c.context,
                    c.content,
                    c.content_hash,
                    key,
                ),
            )
            ids.append(int(cur.lastrowid))
        return ids

    @staticmethod
    def upsert_files(con: sqlite3.Connection, states: Sequence[FileState]) -> None:
        now = time.time()
        con.executemany(
            "INSERT OR REPLACE INTO files(path, size, mtime_ns, hash, language, status, reason, chunks, "
            "indexed_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (s.path, s.size, s.mtime_ns, s.hash, s.language, s.status, s.reason, s.chunks, now)
                for s in states
            ],
        )

    @staticmethod
    def bump_generation(con: sqlite3.Connection, *, chunks: bool = False) -> int:
        """The next generation; ``chunks``: the set of chunks changed too (``chunks_generation``)."""
        row = con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        gen = int(row[0]) + 1 if row else 1
        keys = ("generation", "chunks_generation") if chunks else ("generation",)
        rows = [(key, str(gen)) for key in keys]
        con.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", rows)
        return gen

    # -- chunks whose vectors are pending (see CodebaseStore.stage / fill_vectors) ---------------
    def coverage_counts(self) -> tuple[int, int]:
        """(chunks, chunks whose vector is pending), from one snapshot: read apart while a run
        stages, the two could say more chunks are pending than exist."""
        row = self._con().execute(
            "SELECT (SELECT COUNT(*) FROM chunks), (SELECT COUNT(*) FROM pending_vectors)"
        ).fetchone()
        return int(row[0]), int(row[1])

    def pending_count(self) -> int:
        return int(self._con().execute("SELECT COUNT(*) FROM pending_vectors").fetchone()[0])

    def pending_ids(self) -> set[int]:
        return {r[0] for r in self._con().execute("SELECT id FROM pending_vectors")}

    @staticmethod
    def add_pending(con: sqlite3.Connection, ids: Iterable[int]) -> None:
        con.executemany("INSERT OR IGNORE INTO pending_vectors(id) VALUES (?)", [(int(i),) for i in ids])

    @staticmethod
    def take_pending(con: sqlite3.Connection, ids: Sequence[int]) -> list[int]:
        """Remove ``ids`` from the pending set; returns those that were pending (still stored)."""
        out: list[int] = []
        for batch in _batched(list(ids), 500):
            marks = ",".join("?" * len(batch))
            rows = con.execute(f"SELECT id FROM pending_vectors WHERE id IN ({marks})", batch)
            out.extend(r[0] for r in rows)
            con.execute(f"DELETE FROM pending_vectors WHERE id IN ({marks})", batch)
        return out

    @staticmethod
    def drop_pending(con: sqlite3.Connection, ids: Sequence[int] | None = None) -> None:
        """Forget pending rows: of ``ids`` (deleted chunks), or of chunks that no longer exist."""
        if ids is None:
            con.execute("DELETE FROM pending_vectors WHERE id NOT IN (SELECT id FROM chunks)")
            return
        for batch in _batched(list(ids), 500):
            con.execute(f"DELETE FROM pending_vectors WHERE id IN ({','.join('?' * len(batch))})", batch)

    # -- references ------------------------------------------------------------------------------
    def language_counts(self) -> dict[str, int]:
        rows = self._con().execute("SELECT language, COUNT(*) FROM files WHERE status='ok' GROUP BY language")
        return {r[0] or "text": int(r[1]) for r in rows}


_CHUNK_COLS = "id, path, language, start_line, end_line, symbol, kind, content, context, signature, embed_key"


def _row_to_stored(r: tuple) -> StoredChunk:
    chunk = Chunk(
        path=r[1],
        language=r[2],
        start_line=r[3],
        end_line=r[4],
        symbol=r[5],
        kind=r[6],
        content=r[7],
        context=r[8],
        signature=r[9],
    )
    return StoredChunk(id=r[0], chunk=chunk, embed_key=r[10])


def _upgrade(con: sqlite3.Connection) -> None:
    """Bring an index written by an older version up to ``SCHEMA_VERSION``. Version 1 had no refs:
    every file's recorded state is invalidated, so the next index run or watcher reconcile
    re-chunks each file once (its vectors come from the embedding cache) and fills them in."""
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if int(row[0]) >= SCHEMA_VERSION:
        return
    con.execute("UPDATE files SET hash = '', mtime_ns = -1")
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def _batched(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
