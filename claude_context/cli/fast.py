"""The fast path of ``search``, ``status`` and ``list``: when a server or watcher of this home is
running (``claude_context.fastpath``), parse the few arguments these commands take with argparse
and print its answer, without importing typer (whose parameter set-up alone costs more than the
whole answer), the engine or the model.

Anything this narrow parser does not accept exactly (help, a bad value, an option it does not
know) returns None and the typer app handles the command, with its full checks and messages; so
does every command when no endpoint is live. The option names mirror ``commands.py`` (a test
checks they exist there).
"""

from __future__ import annotations

import argparse

from claude_context.config import MAX_LIMIT

COMMANDS = ("search", "status", "list")


class _Refused(Exception):
    """The arguments are not ones the fast path takes: typer handles them."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]  # never print or exit here
        raise _Refused(message)


def parser(command: str) -> argparse.ArgumentParser:
    """The fast path's grammar of ``command`` (a subset of the typer command's)."""
    p = _Parser(prog=command, add_help=False, allow_abbrev=False)
    if command == "search":
        p.add_argument("path")
        p.add_argument("query")
        p.add_argument("--limit", "-n", type=int, default=10)
        p.add_argument("--mode", default=None)
        p.add_argument("--ext", action="append", default=[])
        p.add_argument("--path", dest="include", action="append", default=[])
        p.add_argument("--exclude", action="append", default=[])
        p.add_argument("--language", action="append", default=[])
        p.add_argument("--lines", type=int, default=12)
    elif command == "status":
        p.add_argument("path", nargs="?", default=None)
    p.add_argument("--json", dest="as_json", action="store_true")
    return p


def run_fast(argv: list[str]) -> int | None:
    """Answer ``argv`` through a live endpoint and return the exit code; None: not answered here."""
    if not argv or argv[0] not in COMMANDS:
        return None
    from claude_context.config import load_config
    from claude_context.errors import ClaudeContextError
    from claude_context.fastpath import ENDPOINTS

    try:
        cfg = load_config()
        if not any((cfg.home / ENDPOINTS).glob("*.json")):
            return None
        args = parser(argv[0]).parse_args(argv[1:])
    except (ClaudeContextError, _Refused, OSError):
        return None
    if argv[0] == "search" and not 1 <= args.limit <= MAX_LIMIT:
        return None
    try:
        return _answer(cfg, argv[0], args)
    except ClaudeContextError as exc:
        from claude_context.cli.output import print_error

        print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        from claude_context.cli.output import print_error

        print_error("interrupted")
        return 130


def _answer(cfg, command: str, args: argparse.Namespace) -> int | None:
    from claude_context import fastpath

    if command == "search":
        filters = dict(
            extensions=args.ext,
            include_globs=args.include,
            exclude_globs=args.exclude,
            languages=args.language,
        )
        body = dict(
            path=fastpath.absolute(args.path),
            query=args.query,
            limit=args.limit,
            mode=args.mode,
            filters=filters,
        )
        resp = fastpath.search(cfg, body)
        if resp is None:
            return None
        from claude_context.cli.output import print_search

        print_search(resp, args.lines, args.as_json)
        return 0
    path = getattr(args, "path", None)
    statuses = fastpath.statuses(cfg, fastpath.absolute(path) if path is not None else None)
    if statuses is None:
        return None
    from claude_context.cli.output import print_list, print_statuses

    if command == "list":
        print_list(statuses, args.as_json)
    else:
        print_statuses(statuses, path is not None, args.as_json)
    return 0
