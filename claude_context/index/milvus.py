"""The Milvus chunk index: one collection per codebase in Milvus Lite, a Milvus server or Zilliz Cloud.

SQLite stays the source of truth (chunk rows, file state, generation) and the embedding cache
stays local, so a collection is derived data: it can be dropped and rebuilt from them without
re-embedding, exactly like the local hnswlib + tantivy pair.

Schema (one row per chunk; the primary key is the SQLite chunk id, never reused):
``id``, ``path``, ``extension``, ``language``, ``symbol``, ``kind``, ``start_line``, ``end_line``,
``content_hash``, ``content``, ``dense`` (float vector, inner product on normalized vectors),
``has_vector``, ``bm25_text`` and ``sparse`` (the output of Milvus's own BM25 function over
``bm25_text``). ``bm25_text`` is the chunk's text passed through the same code-aware tokenizer and
stemmer as the local BM25 index (``getUserName`` -> ``get user name getusernam``), its
path/symbol/context terms marked (see ``bm25_text``), so both stores rank keyword matches alike;
Milvus then splits it on word boundaries, keeps the term statistics and scores BM25 itself
(k1 = 1.2, b = 0.75, as tantivy). Queries go through the same tokenizer. A chunk whose vector is
still being computed (progressive indexing) has a row with ``has_vector`` false and a zero
placeholder vector: keyword search finds it at once, dense search filters it out until
``add_vectors`` upserts the real vector.

Search: with score fusion (the default) one dense and one BM25 search, fused by the engine as for
the local store (``search_rankings``); with RRF one ``hybrid_search`` fused by ``RRFRanker``;
semantic and keyword are single searches. Filters become Milvus boolean expressions with every value escaped
(see ``filter_expression``).

Identity and consistency: the collection name comes from the codebase folder name (readable
basename + hash of the absolute root path). The collection carries an ``instance`` id that is
also kept in the sidecar ``vectors-milvus.json`` in the codebase folder; a collection whose
instance does not match the sidecar was built from another SQLite (a cleared index, another
machine) and is rebuilt rather than trusted. The generation of the last durable commit is a
collection property, so ``CodebaseStore.sync`` only diffs ids after a crash. The sidecar name
starts with ``vectors`` on purpose: whatever drops the local vector files (a store, quantization
or model change) also makes the next open rebuild the collection.

Errors from pymilvus (unreachable server, refused credentials, missing collection, a Milvus Lite
file held by another process) become one-line ``StoreError``/``StoreUnavailableError``; pymilvus's
own error logging (a traceback per failed call) is silenced because every error is re-raised here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from claude_context.index.base import ChunkIndex, Hit, KeywordDoc, StoreError, StoreUnavailableError
from claude_context.index.bm25 import code_tokens, query_tokens
from claude_context.index.fusion import rrf
from claude_context.models import sha

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from claude_context.models import SearchFilter

log = logging.getLogger(__name__)

T = TypeVar("T")

# Bump when fields, index layout or the BM25 text change: older collections are rebuilt.
SCHEMA_VERSION = 1

SIDECAR = "vectors-milvus.json"
DEFAULT_LITE_FILE = "vectors-milvus.db"  # inside the codebase folder when no URI is configured

P_SCHEMA = "claude_context.schema"
P_INSTANCE = "claude_context.instance"
P_GENERATION = "claude_context.generation"
P_INDEX = "claude_context.vector_index"

PATH_MAX = 4096  # bytes (Linux PATH_MAX); VARCHAR lengths in Milvus are UTF-8 bytes
TEXT_MAX = 65_535  # the VARCHAR maximum
SYMBOL_MAX = 2048
SHORT_MAX = 64

BM25_PARAMS = {"bm25_k1": 1.2, "bm25_b": 0.75}
# Marks path/symbol/context terms in the one BM25 field (see ``bm25_text``). Letters only, so every
# Milvus analyzer keeps "zqparse" one token; no code token starts like this in practice.
META_PREFIX = "zq"
MAX_QUERY_TERMS = 64
EF_SEARCH = 128  # HNSW beam at query time (never below k)
NPROBE = 64  # IVF lists probed at query time
INSERT_BATCH = 512
DELETE_BATCH = 8192
ITER_BATCH = 8192
CONNECT_TIMEOUT_S = 10.0
STATS_TTL_S = 5.0  # counts for status lines, refreshed at once after this process writes
RECHECK_S = 10.0  # how often a long-lived process re-checks that the collection is still ours

# Vector index per quantization, best first. The server is asked which it has (Milvus Lite
# reports its index types, a server its version) and the first available one is used.
_HNSW = {"M": 16, "efConstruction": 200}  # same graph as the local hnswlib index
_CANDIDATES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "none": [("HNSW", _HNSW)],
    "int8": [("HNSW_SQ", {**_HNSW, "sq_type": "SQ8"}), ("IVF_SQ8", {"nlist": 1024})],
    "rabitq": [("IVF_RABITQ", {"nlist": 1024, "refine": True, "refine_type": "SQ8"})],
}
_MIN_VERSION = {"HNSW_SQ": (2, 6), "IVF_RABITQ": (2, 6)}  # on a Milvus server

_lite_lock = threading.Lock()
_lite_start_lock = threading.Lock()
_lite_users: dict[str, int] = {}  # Milvus Lite data dir -> open indexes in this process


# --------------------------------------------------------------------------- names and text


def collection_name(folder: Path) -> str:
    """A valid Milvus collection name (``[A-Za-z_][A-Za-z0-9_]*``, <= 255) for a codebase folder.

    The folder name is already ``<basename>-<hash12 of the absolute root>``, so this is stable
    per root and distinct across roots."""
    return ("cc_" + re.sub(r"[^0-9A-Za-z_]", "_", folder.name))[:255]


def is_lite_uri(uri: str) -> bool:
    return uri.endswith(".db") and "://" not in uri


def quote(value: str) -> str:
    """A Milvus string literal: backslash, double quote and line breaks escaped, nothing else
    interpreted, so a value can never end the literal or inject an expression."""
    escaped = (
        _clean(value)
        .replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def filter_expression(filters: SearchFilter | None, allowed_paths: set[str] | None) -> str | None:
    """The Milvus boolean expression for a search scope; None = search everything.

    Extensions, languages and the subfolder translate to indexed fields and a string range
    (``path >= "web/" and path < "web0"`` is exactly "starts with web/", with no wildcard to
    escape), so their size does not depend on the codebase. Gitignore-style globs have no Milvus
    equivalent: they use the paths the engine resolved from SQLite (one entry per file, never per
    chunk).
    """
    if allowed_paths is None:
        return None
    if filters is not None and not (filters.include_globs or filters.exclude_globs):
        parts = []
        prefix = filters.subfolder.strip("/")
        if prefix and prefix != ".":
            parts.append(f"(path >= {quote(prefix + '/')} and path < {quote(prefix + '0')})")
        exts = sorted({"." + e.lower().lstrip(".") for e in filters.extensions if e.strip(".")})
        if exts:
            parts.append(f"extension in [{', '.join(quote(e) for e in exts)}]")
        langs = sorted({lang.lower() for lang in filters.languages if lang})
        if langs:
            parts.append(f"language in [{', '.join(quote(lang) for lang in langs)}]")
        if parts:
            return " and ".join(parts)
    return f"path in [{', '.join(quote(p) for p in sorted(allowed_paths))}]"


def _clean(text: str) -> str:
    """Valid UTF-8 for the wire (lone surrogates from undecodable file names become U+FFFD)."""
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def _fit(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return data.decode("utf-8") if not text.isascii() else text
    return data[:max_bytes].decode("utf-8", "ignore")


_analyzer_local = threading.local()


def _stem(tokens: list[str]) -> list[str]:
    """The local BM25 index's analyzer (lowercase + English stemmer) over pre-split tokens."""
    if not tokens:
        return []
    analyzer = getattr(_analyzer_local, "analyzer", None)
    if analyzer is None:
        from claude_context.index.bm25 import _analyzer

        analyzer = _analyzer_local.analyzer = _analyzer()
    return list(analyzer.analyze(" ".join(tokens)))


def bm25_text(doc: KeywordDoc) -> str:
    """What Milvus's BM25 function indexes for a chunk: the stemmed code-aware tokens of its
    content, then those of its path/symbol/context with the ``META_PREFIX`` mark.

    The local index keeps path/symbol/context in a second BM25 field; one Milvus sparse field
    (what ``hybrid_search`` fuses with the dense one) gets the same effect from marked terms:
    they have their own document frequencies, so a symbol match is scored like a match in a
    separate field (measured on the public eval sets: as good as two fields, where repeating
    unmarked terms lost ~5 points of keyword hit@10).
    """
    body = _stem(code_tokens(doc.content))
    meta = _stem(code_tokens(f"{doc.path} {doc.symbol} {doc.context}"))
    text = " ".join([*body, *(META_PREFIX + t for t in meta)])
    if len(text) > TEXT_MAX:
        text = text[:TEXT_MAX].rsplit(" ", 1)[0]
    return _fit(text, TEXT_MAX)


def query_text(query: str) -> str:
    """The BM25 query: the tokens the local index would look up, plain and marked (a query term
    may match a chunk's content or its path/symbol/context)."""
    stems = list(dict.fromkeys(_stem(query_tokens(query))))[:MAX_QUERY_TERMS]
    return " ".join([*stems, *(META_PREFIX + t for t in stems)])


def _language(path: str) -> str:
    from claude_context.chunkers import detect_language

    return detect_language(path) or "text"  # the same rule as scope.resolve_scope


def _row(doc: KeywordDoc, vector: np.ndarray | None) -> dict[str, Any]:
    """A chunk's row; ``vector`` None = its vector is still being computed (progressive indexing):
    the row is keyword-searchable now and holds a zero placeholder that dense search filters out."""
    return {
        "id": int(doc.id),
        "path": _fit(doc.path, PATH_MAX),
        "extension": _fit(PurePosixPath(doc.path).suffix.lower(), SHORT_MAX),
        "language": _fit(_language(doc.path), SHORT_MAX),
        "symbol": _fit(doc.symbol, SYMBOL_MAX),
        "kind": _fit(doc.kind, SHORT_MAX),
        "start_line": int(doc.start_line),
        "end_line": int(doc.end_line),
        "content_hash": sha(doc.content),
        "content": _fit(doc.content, TEXT_MAX),
        "bm25_text": bm25_text(doc),
        "dense": np.asarray(vector, dtype=np.float32) if vector is not None else None,
        "has_vector": vector is not None,
    }


_ROW_FIELDS = (
    "id",
    "path",
    "extension",
    "language",
    "symbol",
    "kind",
    "start_line",
    "end_line",
    "content_hash",
    "content",
    "bm25_text",
    "dense",
    "has_vector",
)


_AUTH_WORDS = re.compile(
    r"\b(authenticat\w*|unauthori[sz]ed|auth check|credentials?|permission denied|invalid token|api key)\b"
)


def _redact(uri: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", uri)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --------------------------------------------------------------------------- server facts


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


def _unsupported_message(quantization: str, server: ServerInfo) -> str:
    wanted = ", ".join(t for t, _ in _CANDIDATES.get(quantization, []))
    hint = {
        "rabitq": "IVF_RABITQ needs Milvus 2.6 or later; use --quantization int8 or none",
        "int8": "use --quantization none",
    }.get(quantization, "")
    return (
        f"{server.describe()} does not support the index for quantization {quantization!r} "
        f"({wanted}){': ' + hint if hint else ''}"
    )


# --------------------------------------------------------------------------- Milvus Lite process state


def _lite_acquire(path: str) -> None:
    with _lite_lock:
        _lite_users[path] = _lite_users.get(path, 0) + 1


def _lite_release(path: str) -> None:
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


def _lite_problem(path: str) -> str | None:
    """Why a Milvus Lite data folder cannot be opened, if a cause can be seen from outside."""
    p = Path(path)
    if p.is_file():
        return f"{path} is a file, not a Milvus Lite data folder (files from milvus-lite 2.x cannot be read)"
    if not p.parent.is_dir():
        return f"cannot create the Milvus Lite data folder {path}: {p.parent} does not exist"
    lock = p / "LOCK"
    if lock.exists() and not _lite_running_here(path):
        import fcntl

        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError as exc:
            return f"cannot open the Milvus Lite data folder {path}: {exc.strerror}"
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            return (
                f"the Milvus Lite file {path} is open in another process (Milvus Lite allows one "
                "process per file): stop that process, or use a Milvus server for shared access"
            )
        finally:
            os.close(fd)
    return None


def _quiet_pymilvus() -> None:
    """pymilvus logs every failed call with a traceback; this module re-raises them as one line."""
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)


def _quiet_lite_server() -> None:
    """Milvus Lite serves pymilvus from a gRPC server in this process, and grpc logs a traceback for
    each call it does not implement (``query_iterator`` asks for a timestamp first, then goes on)."""
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)


# --------------------------------------------------------------------------- the index


class MilvusChunkIndex(ChunkIndex):
    """A codebase's chunks in one Milvus collection. Connects lazily: constructing never fails,
    so ``status`` works (and reports the store unavailable) while the server is down."""

    kind = "milvus"
    reader_patches = False  # the collection is shared: only the writer changes it

    def __init__(
        self,
        folder: Path,
        dim: int,
        *,
        uri: str = "",
        token: str = "",
        quantization: str = "none",
        timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.folder = Path(folder)
        self.dim = dim
        self.uri = uri or str(self.folder / DEFAULT_LITE_FILE)
        self.lite = is_lite_uri(self.uri)
        self.token = token
        self.quantization = quantization
        self.timeout = timeout
        self.collection = collection_name(self.folder)
        self._lock = threading.RLock()
        self._client: MilvusClient | None = None
        self._server: ServerInfo | None = None
        self._ready = False  # collection verified as ours (or created) and loaded
        self._seen = False  # this object has used the collection (a new one now means data loss)
        self._checked_at = 0.0
        self._stats_cache: tuple[float, dict[str, object]] | None = None
        self._index_type = ""
        self._generation_writable = True
        self._pending_vectors: dict[int, np.ndarray] = {}  # repair: vectors before their rows
        self._closed = False

    # ------------------------------------------------------------------ connection

    @property
    def where(self) -> str:
        return f"Milvus Lite file {self.uri}" if self.lite else f"Milvus at {_redact(self.uri)}"

    def _connect(self) -> MilvusClient:
        with self._lock:
            if self._closed:
                raise RuntimeError("Milvus index is closed")
            if self._client is not None:
                return self._client
            try:
                from pymilvus import MilvusClient
            except ImportError:
                raise StoreError(
                    "the milvus store needs pymilvus and milvus-lite: pip install 'claude-context[milvus]'"
                ) from None
            _quiet_pymilvus()
            # Milvus Lite: one embedded server per file and process, started by the first client;
            # two threads starting it at once would each try to lock the file.
            with _lite_start_lock if self.lite else contextlib.nullcontext():
                if self.lite:
                    problem = _lite_problem(self.uri)
                    if problem:
                        raise StoreUnavailableError(problem)
                    _quiet_lite_server()
                    _lite_acquire(self.uri)
                try:
                    client = MilvusClient(uri=self.uri, token=self.token, timeout=self.timeout)
                    version = str(client.get_server_version())
                except Exception as exc:
                    if self.lite:
                        _lite_release(self.uri)
                    raise self._translate(exc) from None
            self._client = client
            self._server = server_info(self.uri, version)
            return client

    def _translate(self, exc: BaseException) -> StoreError:
        """One line the user can act on, for any pymilvus / gRPC / Milvus Lite failure."""
        if isinstance(exc, StoreError):
            return exc
        message = str(getattr(exc, "message", "") or exc)
        if self.token:
            message = message.replace(self.token, "***")
        low = message.lower()
        code = getattr(exc, "code", None)
        code = code() if callable(code) else code
        grpc_code = str(code).lower() if code is not None and not isinstance(code, int) else ""
        if self.lite and ("open local milvus" in low or type(exc).__name__ == "DataDirLockedError"):
            return StoreUnavailableError(
                _lite_problem(self.uri) or f"cannot open the {self.where}: {_one_line(message)}"
            )
        if "milvus-lite is required" in low:
            return StoreError("a .db Milvus URI needs milvus-lite: pip install 'claude-context[milvus]'")
        if code in (1400, 1800) or "unauthenticated" in grpc_code or _AUTH_WORDS.search(low):
            return StoreUnavailableError(
                f"{self.where} refused the credentials: check --milvus-token / CLAUDE_CONTEXT_MILVUS_TOKEN"
            )
        if code == 100 or re.search(r"collection\b.*\b(not exist|not found|doesn't exist)", low):
            return self._missing()
        if "deadline" in low or "timed out" in low or "timeout" in low or "deadline" in grpc_code:
            return StoreUnavailableError(f"{self.where} did not answer within {self.timeout:g}s")
        if (
            code == 2
            or "unavailable" in grpc_code
            or any(
                w in low
                for w in ("fail connecting", "connection refused", "failed to connect", "unavailable")
            )
        ):
            return StoreUnavailableError(
                f"cannot reach {self.where}: is the server running and the URI right?"
            )
        if "illegal" in low and "uri" in low:
            return StoreError(
                f"{_redact(self.uri)} is not a Milvus URI: use http(s)://host:port or a path ending in .db"
            )
        return StoreError(f"{self.where}: {_one_line(message)}")

    def _missing(self) -> StoreUnavailableError:
        self._ready = False
        self._stats_cache = None
        return StoreUnavailableError(
            f"the collection {self.collection} of this codebase is missing from {self.where}: "
            "run `claude-context index` on the codebase to rebuild it from the local index "
            "(nothing is re-embedded)"
        )

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one client call; a collection someone released is loaded again once."""
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            text = str(getattr(exc, "message", "") or exc).lower()
            if getattr(exc, "code", None) == 101 or "not loaded" in text or "released" in text:
                try:
                    self._connect().load_collection(self.collection)
                    return fn(*args, **kwargs)
                except Exception as again:
                    raise self._translate(again) from None
            raise self._translate(exc) from None

    # ------------------------------------------------------------------ the collection

    def _read_sidecar(self) -> dict[str, Any]:
        try:
            data = json.loads((self.folder / SIDECAR).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_sidecar(self, data: dict[str, Any]) -> None:
        path = self.folder / SIDECAR
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)

    def _describe(self) -> dict[str, Any] | None:
        client = self._connect()
        if not self._call(client.has_collection, self.collection):
            return None
        return self._call(client.describe_collection, self.collection)

    def _ours(self, desc: dict[str, Any]) -> str:
        """Why an existing collection cannot be used as this codebase's index ("" = it can)."""
        props = desc.get("properties") or {}
        side = self._read_sidecar()
        fields = {f.get("name") for f in desc.get("fields", [])}
        if str(props.get(P_SCHEMA)) != str(SCHEMA_VERSION) or not set(_ROW_FIELDS) <= fields:
            return "it has another schema version"
        if not side or side.get("instance") != props.get(P_INSTANCE):
            return "it was not built from this local index"
        if side.get("uri") != self.uri or side.get("quantization") != self.quantization:
            return "the store options changed"
        for f in desc.get("fields", []):
            if f.get("name") == "dense" and int((f.get("params") or {}).get("dim", -1)) != self.dim:
                return "its vectors have another dimension"
        return ""

    def _ensure(self, create: bool = False) -> MilvusClient:
        """Connect and make sure the collection is this codebase's and loaded (re-checked every
        ``RECHECK_S``: another process may drop or rebuild it).

        ``create`` (the writer, at the start of a run: ``generation``, or on its first write)
        replaces a missing or foreign collection with a new one. Anyone else gets a clear error
        instead: a reader must not search another index's ids, and a writer whose collection
        vanished mid-run must not stamp a generation over rows it never wrote.
        """
        client = self._connect()
        if self._ready and time.monotonic() - self._checked_at < RECHECK_S:
            return client
        with self._lock:
            desc = self._describe()
            why = self._ours(desc) if desc is not None else "it does not exist"
            if why and (not create or self._seen):
                self._ready = False
                if desc is None:
                    raise self._missing()
                raise StoreUnavailableError(
                    f"the collection {self.collection} in {self.where} was not built from this "
                    f"codebase's local index ({why}): run `claude-context index` on the codebase "
                    "to rebuild it"
                )
            if why:
                if desc is not None:
                    log.info("rebuilding Milvus collection %s: %s", self.collection, why)
                    self._call(client.drop_collection, self.collection)
                self._create(client)
            elif not self._ready:
                props = desc.get("properties") or {}
                self._index_type = str(props.get(P_INDEX, "")) or self._described_index_type(client)
                from pymilvus.client.types import LoadState

                state = self._call(client.get_load_state, self.collection)
                if state.get("state") != LoadState.Loaded:  # Milvus Lite reopens collections released
                    self._call(client.load_collection, self.collection)
            if not self._ready:
                self._stats_cache = None
            self._ready = self._seen = True
            self._checked_at = time.monotonic()
            return client

    def _create(self, client: MilvusClient) -> None:
        from pymilvus import DataType, Function, FunctionType

        assert self._server is not None
        choices = vector_index_choices(self.quantization, self._server)
        if not choices:
            raise StoreError(_unsupported_message(self.quantization, self._server))
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("path", DataType.VARCHAR, max_length=PATH_MAX)
        schema.add_field("extension", DataType.VARCHAR, max_length=SHORT_MAX)
        schema.add_field("language", DataType.VARCHAR, max_length=SHORT_MAX)
        schema.add_field("symbol", DataType.VARCHAR, max_length=SYMBOL_MAX)
        schema.add_field("kind", DataType.VARCHAR, max_length=SHORT_MAX)
        schema.add_field("start_line", DataType.INT64)
        schema.add_field("end_line", DataType.INT64)
        schema.add_field("content_hash", DataType.VARCHAR, max_length=SHORT_MAX)
        schema.add_field("content", DataType.VARCHAR, max_length=TEXT_MAX)
        schema.add_field(
            "bm25_text",
            DataType.VARCHAR,
            max_length=TEXT_MAX,
            enable_analyzer=True,
            analyzer_params={"tokenizer": "standard"},
        )
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("has_vector", DataType.BOOL)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["bm25_text"],
                output_field_names=["sparse"],
            )
        )
        instance = uuid.uuid4().hex
        self._call(
            client.create_collection,
            self.collection,
            schema=schema,
            consistency_level="Strong",  # an index run's writes are visible to the next search
            properties={P_SCHEMA: str(SCHEMA_VERSION), P_INSTANCE: instance},
        )
        zilliz = self._server.kind == "zilliz"
        params = client.prepare_index_params()
        params.add_index(
            "sparse",
            index_type="AUTOINDEX" if zilliz else "SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params=self._build_params(BM25_PARAMS),  # tantivy's, as in the local index
        )
        for field in ("path", "extension", "language", "has_vector"):
            params.add_index(field, index_type="AUTOINDEX" if zilliz else "INVERTED")
        # sync=False: the collection is empty, so there is nothing to wait for (pymilvus polls 0.5 s
        # per index otherwise); an unknown index type or bad parameter is still refused at once.
        self._call(client.create_index, self.collection, params, sync=False)
        errors = []
        for index_type, build in choices:
            vparams = client.prepare_index_params()
            vparams.add_index(
                "dense", index_type=index_type, metric_type="IP", params=self._build_params(build)
            )
            try:
                self._call(client.create_index, self.collection, vparams, sync=False)
            except StoreUnavailableError:
                raise
            except StoreError as exc:
                errors.append(f"{index_type}: {exc}")
                continue
            self._index_type = index_type
            break
        else:
            with contextlib.suppress(Exception):
                client.drop_collection(self.collection)
            raise StoreError(
                _unsupported_message(self.quantization, self._server) + f" ({'; '.join(errors)})"
            )
        if self._index_type != choices[0][0]:
            log.warning(
                "%s has no %s index: quantization %r uses %s instead",
                self._server.describe(),
                choices[0][0],
                self.quantization,
                self._index_type,
            )
        self._set_properties({P_INDEX: self._index_type})
        self._call(client.load_collection, self.collection)
        self._write_sidecar(
            {
                "instance": instance,
                "uri": self.uri,
                "collection": self.collection,
                "quantization": self.quantization,
                "schema": SCHEMA_VERSION,
            }
        )

    def _described_index_type(self, client: MilvusClient) -> str:
        """The vector index type from the server, when the collection property is missing."""
        try:
            return str(self._call(client.describe_index, self.collection, "dense").get("index_type", ""))
        except StoreError:
            return ""

    def _build_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Index build parameters as this server reads them: pymilvus sends them as top-level keys,
        which a Milvus server reads; Milvus Lite only reads a nested ``params`` (else it silently
        uses its defaults, e.g. BM25 k1 = 1.5)."""
        assert self._server is not None
        return {"params": dict(params)} if self._server.kind == "lite" else dict(params)

    def _set_properties(self, props: dict[str, str]) -> bool:
        try:
            self._call(self._connect().alter_collection_properties, self.collection, properties=props)
        except StoreUnavailableError:
            raise
        except StoreError as exc:  # a server that refuses custom properties: sync diffs ids instead
            if self._generation_writable:
                log.warning("cannot record index state on the Milvus collection (%s)", exc)
            self._generation_writable = False
            return False
        return True

    # ------------------------------------------------------------------ writes (writer only)

    def add(self, docs: Sequence[KeywordDoc], vectors: np.ndarray) -> None:
        if docs:
            self._insert([_row(d, vectors[i]) for i, d in enumerate(docs)])

    def _insert(self, rows: list[dict[str, Any]], *, upsert: bool = False) -> None:
        client = self._ensure(create=True)
        self._stats_cache = None
        for row in rows:
            if row["dense"] is None:
                row["dense"] = np.zeros(self.dim, np.float32)
        op = client.upsert if upsert else client.insert
        for i in range(0, len(rows), INSERT_BATCH):
            self._call(op, self.collection, rows[i : i + INSERT_BATCH])

    def delete(self, ids: Sequence[int]) -> None:
        ids = [int(i) for i in ids]
        if not ids:
            return
        client = self._ensure(create=True)
        self._stats_cache = None
        for i in range(0, len(ids), DELETE_BATCH):
            self._call(client.delete, self.collection, ids=ids[i : i + DELETE_BATCH])

    def add_keywords(self, docs: Sequence[KeywordDoc]) -> None:
        """Rows for chunks that have no row yet: complete if ``add_vectors`` already brought their
        vector (the repair order), else keyword-only placeholders until it does."""
        if docs:
            self._insert([_row(d, self._pending_vectors.pop(int(d.id), None)) for d in docs])

    def add_vectors(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Vectors for rows that exist as keyword-only placeholders (progressive indexing, or a
        repair); a vector whose row does not exist yet waits for ``add_keywords``."""
        if not len(ids):
            return
        client = self._ensure(create=True)
        by_id = {int(cid): np.asarray(vectors[i], dtype=np.float32) for i, cid in enumerate(ids)}
        fields = [f for f in _ROW_FIELDS if f not in ("dense", "has_vector")]
        keys = sorted(by_id)
        rows: list[dict[str, Any]] = []
        for i in range(0, len(keys), INSERT_BATCH):
            part = keys[i : i + INSERT_BATCH]
            found = self._call(
                client.query, self.collection, filter=_id_expression(part), output_fields=fields
            )
            for r in found:
                row = {f: r[f] for f in fields}
                row["dense"], row["has_vector"] = by_id.pop(int(r["id"])), True
                rows.append(row)
        if rows:
            self._insert(rows, upsert=True)
        self._pending_vectors.update(by_id)

    def delete_vectors(self, ids: Sequence[int]) -> None:
        """The store only drops ids that left SQLite, so the whole row goes (one row per chunk)."""
        self.delete(ids)

    def delete_keywords(self, ids: Sequence[int]) -> None:
        self.delete(ids)

    def commit(self, generation: int, durable: bool = False) -> None:
        """Writes are visible at once (strong consistency); ``durable`` also seals Milvus Lite's
        in-memory segment (so it is indexed and reopens fast) and stamps the generation."""
        if self._pending_vectors:  # vectors of chunks that never got a row: nothing to attach to
            log.warning("%d vector(s) without a chunk row were not stored", len(self._pending_vectors))
            self._pending_vectors.clear()
        if not durable:
            return
        client = self._ensure(create=True)
        if self.lite:
            self._call(client.flush, self.collection)
        self._set_properties({P_GENERATION: str(int(generation))})

    def generation(self) -> int | None:
        """Read at the start of every index run (``CodebaseStore.sync``), which is where a missing
        or foreign collection may be replaced: the sync that follows refills it by id difference."""
        self._seen = False
        self._ready = False
        self._ensure(create=True)
        if not self._generation_writable:
            return None
        desc = self._describe()
        value = ((desc or {}).get("properties") or {}).get(P_GENERATION)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def ids(self) -> tuple[set[int], set[int]]:
        """(ids with a real vector, ids with a row) in one iterator pass."""
        client = self._ensure(create=True)
        rows: set[int] = set()
        vectors: set[int] = set()
        it = self._call(
            client.query_iterator,
            self.collection,
            batch_size=ITER_BATCH,
            filter="id >= 0",
            output_fields=["id", "has_vector"],
        )
        try:
            while True:
                batch = self._call(it.next)
                if not batch:
                    break
                for r in batch:
                    rows.add(int(r["id"]))
                    if r["has_vector"]:
                        vectors.add(int(r["id"]))
        finally:
            with contextlib.suppress(Exception):
                it.close()
        return vectors, rows

    def drop(self) -> None:
        """Drop the collection if it is this codebase's (never one built from another index)."""
        client = self._connect()
        desc = self._describe()
        if desc is not None and not self._ours(desc):
            self._call(client.drop_collection, self.collection)
        self._ready = False
        self._stats_cache = None
        with contextlib.suppress(FileNotFoundError):
            (self.folder / SIDECAR).unlink()

    # ------------------------------------------------------------------ search

    def _dense_params(self, k: int) -> dict[str, Any]:
        if self._index_type.startswith("HNSW"):
            params: dict[str, Any] = {"ef": max(k, EF_SEARCH)}
        elif self._index_type.startswith("IVF"):
            params = {"nprobe": NPROBE}
        else:
            params = {}
        return {"metric_type": "IP", "params": params}

    @staticmethod
    def _sparse_params() -> dict[str, Any]:
        # An explicit metric and no drop_ratio_search: Milvus Lite rejects either otherwise.
        return {"metric_type": "BM25"}

    @staticmethod
    def _hits(result: Any, *, absolute: bool = False) -> list[Hit]:
        rows = result[0] if result else []
        # Milvus Lite reports BM25 as a negative distance (smaller is better); servers as a score.
        return [
            Hit(int(r["id"]), abs(float(r["distance"])) if absolute else float(r["distance"])) for r in rows
        ]

    def _search_one(self, field: str, data: Any, k: int, expr: str | None) -> list[Hit]:
        client = self._ensure(create=False)
        dense = field == "dense"
        if dense:
            expr = _with_vector(expr)
        res = self._call(
            client.search,
            self.collection,
            data=[data],
            anns_field=field,
            search_params=self._dense_params(k) if dense else self._sparse_params(),
            limit=k,
            filter=expr or "",
            output_fields=[],
        )
        return self._hits(res, absolute=not dense)

    def search_hybrid(
        self,
        query: str | None,
        vector: np.ndarray | None,
        k: int,
        allowed_paths: set[str] | None,
        filters: SearchFilter | None = None,
        *,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
        fusion: str = "rrf",
    ) -> list[Hit] | None:
        if fusion == "score":
            return None  # the engine fuses ``search_rankings`` as it fuses the local indexes
        if k <= 0 or (allowed_paths is not None and not allowed_paths):
            return []
        expr = filter_expression(filters, allowed_paths)
        text = query_text(query) if query is not None else ""
        vec = _query_vector(vector) if vector is not None else None
        hybrid = query is not None and vector is not None
        w_dense, w_kw = weights if hybrid else (1.0, 1.0)
        use_dense = vec is not None and w_dense != 0
        use_kw = bool(text) and w_kw != 0
        if use_dense and use_kw and w_dense == w_kw:
            from pymilvus import AnnSearchRequest, RRFRanker

            client = self._ensure(create=False)
            reqs = [
                AnnSearchRequest(
                    data=[vec],
                    anns_field="dense",
                    param=self._dense_params(k),
                    limit=k,
                    expr=_with_vector(expr),
                ),
                AnnSearchRequest(
                    data=[text], anns_field="sparse", param=self._sparse_params(), limit=k, expr=expr
                ),
            ]
            # reciprocal rank fusion (RRFRanker has no weights, hence equal weights only)
            res = self._call(
                client.hybrid_search, self.collection, reqs, RRFRanker(rrf_k), limit=k, output_fields=[]
            )
            return [Hit(h.id, h.score * w_dense) for h in self._hits(res)]
        rankings, wts = [], []
        if use_dense:
            rankings.append(self._search_one("dense", vec, k, expr))
            wts.append(w_dense)
        if use_kw:
            rankings.append(self._search_one("sparse", text, k, expr))
            wts.append(w_kw)
        if not rankings:
            return []
        if not hybrid:
            return rankings[0]
        # Unequal weights (RRFRanker has none) or one side empty: fuse the same way here.
        return rrf(rankings, wts, k=rrf_k)

    def search_rankings(
        self,
        query: str | None,
        vector: np.ndarray | None,
        k: int,
        allowed_paths: set[str] | None,
        filters: SearchFilter | None = None,
    ) -> list[tuple[str, list[Hit]]] | None:
        """Dense and BM25 rankings from two single searches, for score fusion in the engine.

        Why not ``hybrid_search`` with ``WeightedRanker``: Milvus normalizes each side with an
        arctan of the raw score, the engine min-max over the candidates (plus its kind priors).
        Measured through MCP on the public click set, chunk hit@10 against the local store's
        0.933: server-side fusion 0.880, the engine's fusion over Milvus's own rankings 0.913
        (express: 0.963 both, local 0.950). RRF (``fusion = "rrf"``, equal weights) still goes
        through one ``hybrid_search`` with ``RRFRanker``."""
        if allowed_paths is not None and not allowed_paths:
            return []
        expr = filter_expression(filters, allowed_paths)
        out: list[tuple[str, list[Hit]]] = []
        if vector is not None:
            out.append(("dense", self._search_one("dense", _query_vector(vector), k, expr)))
        text = query_text(query) if query is not None else ""
        if text:
            out.append(("keyword", self._search_one("sparse", text, k, expr)))
        return out

    def search_dense(self, vector: np.ndarray, k: int, allowed_ids: set[int] | None) -> list[Hit]:
        """Fallback API (the engine uses ``search_hybrid``): an id list only suits small scopes."""
        if allowed_ids is not None and not allowed_ids:
            return []
        expr = _id_expression(allowed_ids)
        return self._search_one("dense", _query_vector(vector), k, expr)

    def search_keyword(self, query: str, k: int, allowed_paths: set[str] | None) -> list[Hit]:
        hits = self.search_hybrid(query, None, k, allowed_paths)
        return hits or []

    # ------------------------------------------------------------------ status

    def stats(self) -> dict[str, object]:
        """Counts and where the index lives; never raises for store problems (status must work).

        The counts are two queries, and the engine asks for stats on every search (for its status
        line), so they are reused for ``STATS_TTL_S`` unless this process wrote since."""
        cached = self._stats_cache
        if cached is not None and time.monotonic() - cached[0] < STATS_TTL_S:
            return dict(cached[1])
        out: dict[str, object] = {"store": "milvus", "uri": _redact(self.uri), "collection": self.collection}
        try:
            client = self._ensure(create=False)
            n = self._count(client, "")
            with_vectors = self._count(client, "has_vector == true")
        except StoreError as exc:
            out.update(available=False, error=str(exc), vector_index="milvus", vectors=0, keyword_docs=0)
            return out
        assert self._server is not None
        out.update(
            available=True,
            server=self._server.describe(),
            vector_index=f"milvus:{self._index_type or 'unknown'}",
            vectors=with_vectors,
            keyword_docs=n,
        )
        self._stats_cache = (time.monotonic(), dict(out))
        return out

    def _count(self, client: MilvusClient, expr: str) -> int:
        rows = self._call(client.query, self.collection, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            client, self._client = self._client, None
            self._ready = False
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
            if self.lite:
                _lite_release(self.uri)


def _query_vector(vector: np.ndarray) -> list[float]:
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(q))
    return (q / norm if norm > 0 else q).tolist()


def _with_vector(expr: str | None) -> str:
    """Dense search only sees rows whose vector is real (not a progressive-indexing placeholder)."""
    return f"has_vector == true and ({expr})" if expr else "has_vector == true"


def _id_expression(ids: Iterable[int] | None) -> str | None:
    if ids is None:
        return None
    return f"id in [{', '.join(str(int(i)) for i in sorted(ids))}]"
