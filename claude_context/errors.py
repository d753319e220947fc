"""Every error a user (or an agent) can act on: one base class, shown as one line.

The CLI (``cli.commands._run``) and the MCP server (``mcp_server.server.tool_errors``) each map
``ClaudeContextError`` to their error form in one place; anything else is a bug and keeps its
traceback. Kept free of imports so every layer can raise these.
"""

from __future__ import annotations


class ClaudeContextError(Exception):
    """A problem the user can fix or wait out; its message is one line."""

    exit_code = 1  # what the CLI exits with


class UserError(ClaudeContextError):
    """A bad path, argument or request (not indexed, empty query, ...)."""


class NotIndexedError(UserError):
    """The path belongs to no indexed codebase."""


class NeedsFullIndex(UserError):
    """The codebase's first index run never completed, or its indexing settings changed since:
    only a full ``index`` run knows what to redo (updates never start one on their own, so a
    cancelled or failing run is not restarted behind the user's back)."""


class ConfigError(UserError, ValueError):
    """A setting has a value we cannot use."""


class IndexBusyError(ClaudeContextError, RuntimeError):
    """Another writer holds this codebase's index."""


class IndexCancelled(ClaudeContextError):
    """An indexing run was cancelled (its cancel event was set)."""

    exit_code = 130


class EmbeddingError(ClaudeContextError, RuntimeError):
    """The model cannot be loaded or run (e.g. a model name that is not available offline)."""


class StoreError(ClaudeContextError):
    """A problem with a (remote) index store the user can act on."""


class StoreUnavailableError(StoreError):
    """The store cannot be used right now: unreachable, credentials refused, collection missing."""


class ServeError(ClaudeContextError):
    """The server must not start as asked (bad transport, port or an unsafe bind)."""

    exit_code = 2


class RefusedRootError(UserError):
    """A folder no user means as a codebase (the filesystem root, a pseudo filesystem)."""


class StorageError(ClaudeContextError):
    """The index home cannot be written or read as it must be (disk full, read-only, damaged)."""


class DiskFullError(StorageError):
    """No space left (or a file size limit) while writing the index."""


class ReadOnlyIndexError(StorageError):
    """The index home (or this codebase's folder) cannot be written: searches still work."""


class IndexDamagedError(StorageError):
    """A SQLite file of the index is not a valid database any more."""
