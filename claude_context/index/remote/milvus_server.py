"""Which Milvus this is (Milvus Lite, a server, Zilliz Cloud), what it can build, and the state of
this process's embedded Milvus Lite servers."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from claude_context.errors import StoreError, StoreUnavailableError

# Vector index per quantization, best first. The server is asked which it has (Milvus Lite
# reports its index types, a server its version) and the first available one is used.
_HNSW = {"M": 16, "efConstruction": 200}  # same graph as the local hnswlib index
_CANDIDATES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "none": [("HNSW", _HNSW)],
    "int8": [("HNSW_SQ", {**_HNSW, "sq_type": "SQ8"}), ("IVF_SQ8", {"nlist": 1024})],
    "rabitq": [("IVF_RABITQ", {"nlist": 1024, "refine": True, "refine_type": "SQ8"})],
}
_MIN_VERSION = {"HNSW_SQ": (2, 6), "IVF_RABITQ": (2, 6)}  # on a Milvus server

_lite_start_lock = threading.Lock()
_lite_users: dict[str, int] = {}  # Milvus Lite data dir -> open indexes in this process


def is_lite_uri(uri: str) -> bool:
    return uri.endswith(".db") and "://" not in uri


@dataclass(frozen=True, slots=True)
class ServerInfo:
    kind: str  # lite | milvus | zilliz
    version: str
    numeric: tuple[int, int] | None  # (major, minor) of a Milvus server, when it says

    def describe(self) -> str:
        if self.kind == "lite":
            return f"Milvus Lite {self.version.removeprefix('milvus_lite-')}"
        if self.kind == "zilliz":
            return "Zilliz Cloud"
        return f"Milvus {self.version}".strip()


def server_info(uri: str, version: str) -> ServerInfo:
    if version.startswith("milvus_lite") or is_lite_uri(uri):
        return ServerInfo("lite", version, None)
    if re.search(r"zilliz", uri + " " + version, re.IGNORECASE):
        return ServerInfo("zilliz", version, None)
    m = re.search(r"(\d+)\.(\d+)", version)
    return ServerInfo("milvus", version, (int(m[1]), int(m[2])) if m else None)


def vector_index_choices(quantization: str, server: ServerInfo) -> list[tuple[str, dict[str, Any]]]:
    """Index types to try for a quantization on this server, best first ([] = none available)."""
    if quantization not in _CANDIDATES:
        raise StoreError(f"unknown quantization {quantization!r} for the Milvus store")
    if server.kind == "zilliz":
        return [("AUTOINDEX", {})]  # Zilliz Cloud picks (and quantizes) its own index
    out = []
    for index_type, params in _CANDIDATES[quantization]:
        if server.kind == "lite":
            if index_type not in _lite_index_types():
                continue
        elif server.numeric is not None and server.numeric < _MIN_VERSION.get(index_type, (0, 0)):
            continue
        out.append((index_type, params))
    return out


def _lite_index_types() -> frozenset[str]:
    """Vector index types the embedded Milvus Lite builds (it accepts others, then fails later)."""
    try:
        from milvus_lite.index.factory import KNOWN_VECTOR_INDEX_TYPES, is_faiss_available
    except ImportError:  # another Milvus Lite: assume the plain graph index only
        return frozenset({"HNSW"})
    types = set(KNOWN_VECTOR_INDEX_TYPES) - {"IVF_PQ"}  # IVF_PQ is listed but not implemented
    if not is_faiss_available():
        types &= {"AUTOINDEX", "BRUTE_FORCE", "FLAT"}
    return frozenset(types)


def unsupported_message(quantization: str, server: ServerInfo) -> str:
    wanted = ", ".join(t for t, _ in _CANDIDATES.get(quantization, []))
    hint = {
        "rabitq": "IVF_RABITQ needs Milvus 2.6 or later; use --quantization int8 or none",
        "int8": "use --quantization none",
    }.get(quantization, "")
    return (
        f"{server.describe()} does not support the index for quantization {quantization!r} "
        f"({wanted}){': ' + hint if hint else ''}"
    )


# -- Milvus Lite process state

LITE_START_LOCK = threading.Lock()  # two threads starting one file's server would each lock it
_lite_lock = threading.Lock()
_lite_users: dict[str, int] = {}  # Milvus Lite data dir -> open indexes in this process




def lite_acquire(path: str) -> None:
    with _lite_lock:
        _lite_users[path] = _lite_users.get(path, 0) + 1


def lite_release(path: str) -> None:
    """Stop this process's embedded server for ``path`` once no index uses it (frees its lock)."""
    with _lite_lock:
        n = _lite_users.get(path, 0) - 1
        if n > 0:
            _lite_users[path] = n
            return
        _lite_users.pop(path, None)
    with contextlib.suppress(Exception):
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)


def _lite_running_here(path: str) -> bool:
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return False
    return os.path.abspath(path) in getattr(server_manager_instance, "_servers", {})


def lite_problem(path: str) -> str | None:
    """Why a Milvus Lite data folder cannot be opened, if a cause can be seen from outside."""
    p = Path(path)
    if p.is_file():
        return f"{path} is a file, not a Milvus Lite data folder (files from milvus-lite 2.x cannot be read)"
    if not p.parent.is_dir():
        return f"cannot create the Milvus Lite data folder {path}: {p.parent} does not exist"
    lock = p / "LOCK"
    if lock.exists() and not _lite_running_here(path):
        probe = FileLock(lock, thread_local=False, preserve_lock_file=True)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return (
                f"the Milvus Lite file {path} is open in another process (Milvus Lite allows one "
                "process per file): stop that process, or use a Milvus server for shared access"
            )
        except OSError as exc:
            return f"cannot open the Milvus Lite data folder {path}: {exc.strerror}"
        probe.release(force=True)
    return None


def quiet_pymilvus() -> None:
    """pymilvus logs every failed call with a traceback; this module re-raises them as one line."""
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)


def quiet_lite_server() -> None:
    """Milvus Lite serves pymilvus from a gRPC server in this process, and grpc logs a traceback for
    each call it does not implement (``query_iterator`` asks for a timestamp first, then goes on)."""
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)


AUTH_WORDS = re.compile(
    r"\b(authenticat\w*|unauthori[sz]ed|auth check|credentials?|permission denied|invalid token|api key)\b"
)


def redact(uri: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", uri)


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def translate(
exc: BaseException, where: str, uri: str, *, token: str, lite: bool, timeout: float
) -> StoreError | None:
    """One line the user can act on, for any pymilvus / gRPC / Milvus Lite failure; None: the
    collection is missing (the index words that itself)."""
    if isinstance(exc, StoreError):
        return exc
    message = str(getattr(exc, "message", "") or exc)
    if token:
        message = message.replace(token, "***")
    low = message.lower()
    code = getattr(exc, "code", None)
    code = code() if callable(code) else code
    grpc_code = str(code).lower() if code is not None and not isinstance(code, int) else ""
    if lite and ("open local milvus" in low or type(exc).__name__ == "DataDirLockedError"):
        return StoreUnavailableError(
            lite_problem(uri) or f"cannot open the {where}: {one_line(message)}"
        )
    if "milvus-lite is required" in low:
        return StoreError("a .db Milvus URI needs milvus-lite: pip install 'claude-context[milvus]'")
    if code in (1400, 1800) or "unauthenticated" in grpc_code or AUTH_WORDS.search(low):
        return StoreUnavailableError(
            f"{where} refused the credentials: check --milvus-token / CLAUDE_CONTEXT_MILVUS_TOKEN"
        )
    if code == 100 or re.search(r"collection\b.*\b(not exist|not found|doesn't exist)", low):
        return None
    if "deadline" in low or "timed out" in low or "timeout" in low or "deadline" in grpc_code:
        return StoreUnavailableError(f"{where} did not answer within {timeout:g}s")
    if (
        code == 2
        or "unavailable" in grpc_code
        or any(
            w in low
            for w in ("fail connecting", "connection refused", "failed to connect", "unavailable")
        )
    ):
        return StoreUnavailableError(
            f"cannot reach {where}: is the server running and the URI right?"
        )
    if "illegal" in low and "uri" in low:
        return StoreError(
            f"{redact(uri)} is not a Milvus URI: use http(s)://host:port or a path ending in .db"
        )
    return StoreError(f"{where}: {one_line(message)}")
