"""The command line. ``main`` first tries the fast path (``fast.py``: a running server or watcher of
this home answers ``search``/``status``/``list`` without typer, the engine or the model being
imported here), then runs the typer app (``commands.py``)."""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    from claude_context.cli.fast import run_fast

    code = run_fast(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from claude_context.cli.commands import app

    app()


def __getattr__(name: str) -> Any:  # ``claude_context.cli.app`` without importing typer up front
    if name == "app":
        from claude_context.cli.commands import app

        return app
    raise AttributeError(name)
