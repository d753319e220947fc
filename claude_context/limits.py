"""Bounds on what a caller may send, checked where input enters (engine, CLI, MCP tools).

A 10 MB query costs seconds and gigabytes to embed, tokenize and echo back; a malformed glob used to
surface as a bare exception. Every check raises ``UserError`` naming the argument and the cause, so
each face shows one sentence.
"""

from __future__ import annotations

from collections.abc import Sequence

from claude_context.errors import UserError

MAX_QUERY_CHARS = 10_000  # a pasted function; the model reads ~1,000 of them, BM25 the rest
MAX_NAME_CHARS = 500  # symbol names, kinds, modes
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux
MAX_LIST_ITEMS = 100  # globs, extensions, languages, ignore patterns
MAX_ITEM_CHARS = 500  # one glob / extension / pattern


def check_text(value: str, name: str, max_chars: int) -> str:
    """``value`` unless it is too long or holds a NUL byte."""
    if len(value) > max_chars:
        raise UserError(f"{name} is too long ({len(value)} characters; at most {max_chars})")
    if "\0" in value:
        raise UserError(f"{name} contains a NUL byte")
    return value


def check_path(value: object, name: str = "path") -> str:
    """A path argument as text: bounded, without NUL bytes (the OS rejects them)."""
    return check_text(str(value), name, MAX_PATH_CHARS)


def check_list(items: Sequence[str] | None, name: str) -> list[str]:
    """A list argument: at most ``MAX_LIST_ITEMS`` strings of at most ``MAX_ITEM_CHARS`` each."""
    items = list(items or [])
    if len(items) > MAX_LIST_ITEMS:
        raise UserError(f"{name} has too many entries ({len(items)}; at most {MAX_LIST_ITEMS})")
    for item in items:
        check_text(str(item), f"an entry of {name}", MAX_ITEM_CHARS)
    return items


def check_globs(globs: Sequence[str] | None, name: str) -> list[str]:
    """Gitignore-style globs that compile, or UserError naming the bad one and why."""
    import pathspec  # imported here: the CLI imports this module on every command

    globs = check_list(globs, name)
    for glob in globs:
        if not glob.strip():
            continue
        try:
            pathspec.PathSpec.from_lines("gitignore", [glob.strip()])
        except Exception as exc:  # pathspec raises ValueError or re.error for a malformed pattern
            raise UserError(f"{name}: invalid glob {glob!r}: {exc}") from None
    return globs
