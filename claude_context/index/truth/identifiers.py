"""Where names are used and defined: the ``refs`` and ``defs`` tables of ``index.sqlite``.

Filled at index time from each file's parse (``chunkers/refs.py``) and replaced with the file's
chunks; ``find_references``, ``find_symbol`` and the file centrality (``search/centrality.py``)
read them. Kept apart from ``MetadataStore`` (which owns the connection and the schema) as the
one place that knows these two tables.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from claude_context.records import NON_DEFINITION_KINDS, Ref

NOT_DEFINITIONS = "(" + ", ".join(f"'{k}'" for k in sorted(NON_DEFINITION_KINDS)) + ")"  # for SQL


class IdentifierIndex:
    """Reads of the two tables through a ``MetadataStore``'s per-thread connection."""

    def __init__(self, con: Callable[[], sqlite3.Connection]) -> None:
        self._con = con

    @staticmethod
    def insert(con: sqlite3.Connection, path: str, refs: Sequence[Ref]) -> None:
        """A file's uses (``refs``) and definitions (``defs``)."""
        con.executemany(
            "INSERT INTO refs(path, line, name, kind) VALUES (?,?,?,?)",
            [(path, r.line, r.name, r.kind) for r in refs if r.kind != "definition"],
        )
        con.executemany(
            "INSERT INTO defs(path, start_line, end_line, name, symbol, kind, signature) "
            "VALUES (?,?,?,?,?,?,?)",
            [
                (path, r.line, r.end_line, r.name, r.symbol, r.def_kind, r.signature)
                for r in refs
                if r.kind == "definition"
            ],
        )

    def find_refs(self, name: str, limit: int, subfolder: str = "") -> list[tuple[str, int, str]]:
        """(path, line, kind) of every use of ``name`` (exact, case-sensitive), by path and line."""
        prefix = subfolder.strip("/") + "/" if subfolder.strip("/") else ""
        rows = self._con().execute(
            "SELECT path, line, kind FROM refs WHERE name = ? AND substr(path, 1, ?) = ? "
            "ORDER BY path, line LIMIT ?",
            (name, len(prefix), prefix, limit),
        )
        return [(r[0], int(r[1]), r[2]) for r in rows]

    def recorded(self) -> bool:
        """Whether uses or definitions were recorded (an index older than them has neither)."""
        con = self._con()
        return any(con.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in ("refs", "defs"))

    def find_definitions(self, name: str, kind: str | None, limit: int) -> list[tuple]:
        """(path, start_line, end_line, language, symbol, kind, signature) of definitions named
        ``name`` (any case), or whose symbol path is ``name`` (``Pricing.apply_discount``)."""
        last = name.rsplit(".", 1)[-1]
        sql, args = "", [last]
        if last != name:
            sql, args = sql + " AND d.symbol = ?", [*args, name]
        if kind:
            sql, args = sql + " AND d.kind = ?", [*args, kind]
        return (
            self._con()
            .execute(
                "SELECT d.path, d.start_line, d.end_line, coalesce(f.language, ''), d.symbol, d.kind, "
                "d.signature FROM defs d LEFT JOIN files f ON f.path = d.path "
                f"WHERE d.name = ? COLLATE NOCASE{sql} ORDER BY d.path, d.start_line LIMIT ?",
                [*args, limit],
            )
            .fetchall()
        )

    def definition_paths(self) -> list[tuple[str, str]]:
        """(name, path) of every definition chunk's name of three characters or more, once each
        (``search/centrality``)."""
        return (
            self._con()
            .execute(
                "SELECT DISTINCT name, path FROM chunks "
                f"WHERE length(name) > 2 AND kind NOT IN {NOT_DEFINITIONS}"
            )
            .fetchall()
        )

    def names_used(self) -> list[tuple[str, str]]:
        """(path, name) of every name a file uses (``refs``), once per file."""
        return self._con().execute("SELECT DISTINCT path, name FROM refs").fetchall()
