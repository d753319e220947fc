"""Entry point of ``claude-context serve``: build the engine and server, then serve stdio or HTTP.

The handshake must never wait for the embedding model: the model loads in a background thread
started just before the transport, and nothing is written to stdout (the stdio protocol stream).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

from claude_context.mcp_server.http import (
    TOKEN_ENV,
    ServeError,
    StaticTokenVerifier,
    auth_settings,
    check_bind,
    security_settings,
)

log = logging.getLogger("claude_context.mcp_server")

TRANSPORTS = ("stdio", "http")
SHUTDOWN_WAIT_S = 1.0  # how long a stopping server waits for a cancelled indexing job


def _warm_up(engine) -> None:
    try:
        engine.warm_up()
        log.info("embedding model loaded")
    except Exception as exc:  # the first search reports it properly; the server keeps running
        log.warning("could not load the embedding model in the background: %s", exc)


def _start_watcher(engine):
    """Watch every indexed codebase (and those indexed later); never blocks the handshake."""
    from claude_context.watcher import WatchService

    try:
        return WatchService(
            engine,
            auto=True,
            debounce=engine.config.watch_debounce,
            poll_interval=engine.config.watch_poll_interval,
            on_update=lambda root, r: log.info(
                "%s: %d changed, %d deleted, %d chunks in %.0f ms",
                root,
                r.files_changed,
                r.files_deleted,
                r.chunks_written,
                r.seconds * 1000,
            ),
        ).start()
    except Exception as exc:  # the server works without it: searches see the last indexed state
        log.warning("could not start the file watcher: %s", exc)
        return None


def rechunk_outdated(engine) -> list[Path]:
    """Start a full run for each indexed codebase chunked by an older chunker (after an upgrade):
    the watcher re-chunks only the files it sees change, and agents rarely call index_codebase.
    Vectors of unchanged chunk texts come from the cache. One busy elsewhere is left to that."""
    from claude_context.codebase import older_chunker

    started: list[Path] = []
    for root in engine.indexed_roots():
        try:
            cb = engine.codebase(root)
            if cb is None or not root.is_dir() or older_chunker(cb.store.meta.get_all_meta()) is None:
                continue
            engine.start_index(root)
            started.append(root)
            log.warning("%s: re-chunking for this version's chunker in the background", root)
        except Exception as exc:  # busy in another process, damaged, vanished: status says so
            log.info("%s: not re-chunked at start (%s)", root, exc)
    return started


def _start_endpoint(engine):
    """Let ``claude-context search`` / ``status`` of this home answer through this server's warm
    engine (``claude_context.fastpath``); the server works without it."""
    from claude_context.fastpath import Endpoint

    try:
        return Endpoint(engine).start()
    except OSError as exc:
        log.warning("no fast path for the CLI: %s", exc)
        return None


def _exit_on_sigterm() -> None:
    """SIGTERM (``kill``, a service manager) stops the server through the same shutdown as a
    client hang-up, so its endpoint file is withdrawn and the watcher saves. Serving HTTP, uvicorn
    catches the signal, shuts down and raises it again once its own handler is gone: this one then
    turns it into ``SystemExit`` (the default action would end the process on the spot)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm)


def _sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    allow_remote: bool = False,
    allowed_hosts: list[str] | None = None,
    log_level: str | None = None,
    warm_up: bool = True,
    watch: bool | None = None,
) -> None:
    """Serve until the client disconnects (stdio) or the process is stopped (HTTP).

    ``watch`` (default: the config's ``watch``, on unless CLAUDE_CONTEXT_WATCH=0) keeps every
    indexed codebase fresh: each is reconciled with the disk in the background at start, then
    watched. Raises ServeError for a refused configuration, before anything is started.
    """
    if transport not in TRANSPORTS:
        raise ServeError(f"transport must be stdio or http, not {transport!r}")
    level = (log_level or os.environ.get("CLAUDE_CONTEXT_LOG_LEVEL") or "WARNING").upper()
    token = os.environ.get(TOKEN_ENV) or None
    if transport == "http":
        check_bind(host, token, allow_remote)
        if not 0 < port < 65536:
            raise ServeError(f"port must be between 1 and 65535, not {port}")

    from claude_context.config import load_config
    from claude_context.engine import Engine
    from claude_context.errors import ConfigError
    from claude_context.mcp_server.server import build_server

    try:
        engine = Engine(load_config())
    except ConfigError as exc:
        raise ServeError(str(exc)) from None
    verifier = StaticTokenVerifier(token) if (token and transport == "http") else None
    server = build_server(
        engine,
        token_verifier=verifier,
        auth=auth_settings(host, port) if verifier else None,
        log_level=level,
    )
    if warm_up:
        threading.Thread(target=_warm_up, args=(engine,), name="warm-up", daemon=True).start()
    keep_fresh = engine.config.watch if watch is None else watch
    watcher = _start_watcher(engine) if keep_fresh else None
    if keep_fresh:  # the same promise as watching: indexes follow the disk, and this version
        threading.Thread(target=rechunk_outdated, args=(engine,), name="rechunk", daemon=True).start()
    endpoint = _start_endpoint(engine)
    _exit_on_sigterm()
    try:
        if transport == "stdio":
            server.run("stdio")
        else:
            security = security_settings(host, allowed_hosts)
            shown = f"[{host}]" if ":" in host else host
            print(
                f"claude-context: MCP over streamable HTTP at http://{shown}:{port}/mcp"
                + (" (bearer token required)" if verifier else ""),
                file=sys.stderr,
                flush=True,
            )
            server.run("streamable-http", host=host, port=port, transport_security=security)
    finally:
        if endpoint is not None:
            endpoint.stop()
        # the client is gone: stop promptly (a job still waiting for the model is abandoned; the
        # index survives that like a kill -9 and the next run resumes it)
        if watcher is not None:
            watcher.stop()  # saves vector indexes that watch-mode updates left unsaved
        if not engine.close(timeout=SHUTDOWN_WAIT_S):
            # native model threads must not be torn down under a running job (abort on exit)
            logging.shutdown()
            sys.stderr.flush()
            os._exit(0)


def main(argv: list[str] | None = None) -> int:
    """``python -m claude_context.mcp_server [--transport ...]``: the same as ``claude-context serve``."""
    import argparse

    ap = argparse.ArgumentParser(prog="claude-context serve", description="Serve claude-context over MCP.")
    ap.add_argument("--transport", choices=TRANSPORTS, default="stdio")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--allow-remote", action="store_true")
    ap.add_argument("--allowed-host", action="append", default=[])
    a = ap.parse_args(argv)
    try:
        serve(a.transport, a.host, a.port, allow_remote=a.allow_remote, allowed_hosts=a.allowed_host)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
