"""The CLI's fast path: a running server or watcher answers ``search`` and ``status`` for it.

A one-shot ``claude-context search`` in a new process pays for imports and a model load (seconds)
before any work. A long-running process of the same home (``serve`` on any transport, ``watch``)
already has the model warm, so it offers a small loopback HTTP endpoint and advertises it in
``<home>/endpoints/<pid>.json`` (port, a random token, the search settings' fingerprint; the file is
readable by its owner only). The CLI tries that first and falls back, silently, to answering
in-process when no endpoint is live, the file is stale, or the settings differ.

Security: the endpoint binds 127.0.0.1 only, checks the Host header (DNS rebinding) and requires
the bearer token from the owner-only file, so it grants nothing the home folder does not.
The server half uses the standard library's ``http.server`` (no event loop to share with the MCP
transport, nothing to install); the client half imports nothing heavy, which is the point.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import http.client
import json
import logging
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from claude_context.config import Config
from claude_context.errors import ClaudeContextError

log = logging.getLogger(__name__)

ENDPOINTS = "endpoints"  # folder under the home
CONNECT_TIMEOUT_S = 0.5
ANSWER_TIMEOUT_S = 120.0  # a search can wait for the server's first model load
# Settings that do not change what search and status answer (the server may run with others).
_NOT_ANSWER_SETTINGS = frozenset(
    {"watch", "watch_debounce", "watch_poll_interval", "threads", "batch_size", "device", "backend", "pinned"}
)


class RemoteError(ClaudeContextError):
    """An error the server's engine raised, carried back with its exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fingerprint(config: Config) -> str:
    """A hash of the settings that shape answers: the CLI uses a server only if they match."""
    fields = {
        f.name: str(getattr(config, f.name))
        for f in dataclasses.fields(config)
        if f.name not in _NOT_ANSWER_SETTINGS
    }
    return hashlib.blake2b(json.dumps(fields, sort_keys=True).encode(), digest_size=8).hexdigest()


# -- server half ------------------------------------------------------------------------------------
class Endpoint:
    """The loopback endpoint of one long-running process; ``start`` advertises it, ``stop`` withdraws it."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.token = secrets.token_urlsafe(24)
        self.file = engine.config.home / ENDPOINTS / f"{os.getpid()}.json"
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> Endpoint:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, name="cli-endpoint", daemon=True).start()
        port = httpd.server_address[1]
        info = {
            "pid": os.getpid(),
            "port": port,
            "token": self.token,
            "fingerprint": fingerprint(self.engine.config),
            "started": time.time(),
        }
        _write_private(self.file, json.dumps(info))
        return self

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.file.unlink()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def answer(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request: ``search`` (a SearchResponse dict) or ``status`` (status dicts)."""
        engine = self.engine
        if op == "search":
            from claude_context.records import SearchFilter

            resp = engine.search(
                body["path"],
                body["query"],
                limit=int(body.get("limit", 10)),
                mode=body.get("mode"),
                filters=SearchFilter(**body.get("filters", {})),
            )
            return {"response": resp.to_dict()}
        if op == "status":
            path = body.get("path")
            statuses = [engine.status(path)] if path is not None else engine.list_codebases()
            return {"statuses": [s.to_dict() for s in statuses]}
        raise KeyError(op)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _handler(endpoint: Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # stdout/stderr belong to the face
            log.debug("endpoint: " + format, *args)

        def do_POST(self) -> None:
            port = self.server.server_address[1]
            host = self.headers.get("Host", "")
            given = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if host not in {f"127.0.0.1:{port}", f"localhost:{port}"}:
                return self._send(403, {"error": "bad host"})
            if not hmac.compare_digest(given.encode(), endpoint.token.encode()):
                return self._send(401, {"error": "bad token"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                self._send(200, endpoint.answer(self.path.strip("/"), body))
            except ClaudeContextError as exc:
                self._send(200, {"error": str(exc), "exit_code": exc.exit_code})
            except (KeyError, TypeError, ValueError) as exc:
                self._send(400, {"error": f"bad request: {exc}"})
            except Exception as exc:  # a bug: the CLI falls back to answering in-process
                log.exception("endpoint request failed")
                self._send(500, {"error": f"{type(exc).__name__}: {exc}"})

        def _send(self, code: int, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


# -- client half ------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _endpoints(config: Config) -> list[dict[str, Any]]:
    """Live endpoint records of this home, newest first; files of dead processes are removed."""
    found = []
    for file in (config.home / ENDPOINTS).glob("*.json"):
        try:
            info = json.loads(file.read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid):
            with contextlib.suppress(OSError):
                file.unlink()
            continue
        found.append(info)
    return sorted(found, key=lambda i: -float(i.get("started", 0)))


def ask(config: Config, op: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """``op`` answered by a live endpoint of this home with the same settings; None if there is
    none (or it failed: the caller answers in-process). Raises RemoteError for the engine's errors."""
    if os.environ.get("CLAUDE_CONTEXT_FAST_PATH", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    mine = None
    for info in _endpoints(config):
        mine = mine or fingerprint(config)
        if info.get("fingerprint") != mine:
            continue
        data = _post(int(info["port"]), str(info["token"]), op, body)
        if data is None:
            continue
        if "error" in data:
            raise RemoteError(str(data["error"]), int(data.get("exit_code", 1)))
        return data
    return None


def _post(port: int, token: str, op: str, body: dict[str, Any]) -> dict[str, Any] | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CONNECT_TIMEOUT_S)
    try:
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(ANSWER_TIMEOUT_S)
        raw = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn.request("POST", f"/{op}", body=raw, headers=headers)
        resp = conn.getresponse()
        data = json.loads(resp.read() or b"{}")
        if resp.status != 200:
            return None
        return data
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def search(config: Config, body: dict[str, Any]):
    """``ask`` for a search, as a ``SearchResponse`` (None: no live endpoint)."""
    data = ask(config, "search", body)
    if data is None:
        return None
    from claude_context.search.results import SearchResponse, SearchResult

    d = data["response"]
    return SearchResponse(**{**d, "results": [SearchResult(**r) for r in d["results"]]})


def statuses(config: Config, path: str | None):
    """``ask`` for the status of ``path`` (None: every codebase), as ``CodebaseStatus`` records."""
    data = ask(config, "status", {"path": path})
    if data is None:
        return None
    from claude_context.reports import CodebaseStatus

    return [CodebaseStatus(**s) for s in data["statuses"]]


def absolute(path: str | os.PathLike) -> str:
    """``path`` as the server must see it (its working folder is not ours)."""
    return os.path.abspath(os.path.expanduser(str(path)))
