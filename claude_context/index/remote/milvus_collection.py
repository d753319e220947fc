"""A codebase's Milvus collection: connecting, verifying it is this codebase's, creating it.

``MilvusChunkIndex`` (``milvus.py``) builds the chunk index on it; see there for the design.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from claude_context.errors import StoreError, StoreUnavailableError
from claude_context.index.remote.milvus_rows import (
    ROW_FIELDS,
    collection_name,
    collection_schema,
)
from claude_context.index.remote.milvus_server import (
    LITE_START_LOCK,
    ServerInfo,
    is_lite_uri,
    lite_acquire,
    lite_problem,
    lite_release,
    quiet_lite_server,
    quiet_pymilvus,
    redact,
    server_info,
    translate,
    unsupported_message,
    vector_index_choices,
)

if TYPE_CHECKING:
    from pymilvus import MilvusClient


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


BM25_PARAMS = {"bm25_k1": 1.2, "bm25_b": 0.75}
EF_SEARCH = 128  # HNSW beam at query time (never below k)
NPROBE = 64  # IVF lists probed at query time
INSERT_BATCH = 512
DELETE_BATCH = 8192
ITER_BATCH = 8192
CONNECT_TIMEOUT_S = 10.0
STATS_TTL_S = 5.0  # counts for status lines, refreshed at once after this process writes
RECHECK_S = 10.0  # how often a long-lived process re-checks that the collection is still ours


class MilvusCollection:
    """One codebase's collection: the connection, the check that the collection is this codebase's
    (``_ensure``), and its creation. Connects lazily: constructing never fails, so ``status`` works
    (and reports the store unavailable) while the server is down."""

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
        return f"Milvus Lite file {self.uri}" if self.lite else f"Milvus at {redact(self.uri)}"

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
            quiet_pymilvus()
            # Milvus Lite: one embedded server per file and process, started by the first client;
            # two threads starting it at once would each try to lock the file.
            with LITE_START_LOCK if self.lite else contextlib.nullcontext():
                if self.lite:
                    problem = lite_problem(self.uri)
                    if problem:
                        raise StoreUnavailableError(problem)
                    quiet_lite_server()
                    lite_acquire(self.uri)
                try:
                    client = MilvusClient(uri=self.uri, token=self.token, timeout=self.timeout)
                    version = str(client.get_server_version())
                except Exception as exc:
                    if self.lite:
                        lite_release(self.uri)
                    raise self._translate(exc) from None
            self._client = client
            self._server = server_info(self.uri, version)
            return client

    def _translate(self, exc: BaseException) -> StoreError:
        """One line the user can act on, for any pymilvus / gRPC / Milvus Lite failure."""
        error = translate(exc, self.where, self.uri, token=self.token, lite=self.lite, timeout=self.timeout)
        return self._missing() if error is None else error

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
        if str(props.get(P_SCHEMA)) != str(SCHEMA_VERSION) or not set(ROW_FIELDS) <= fields:
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
        assert self._server is not None
        choices = vector_index_choices(self.quantization, self._server)
        if not choices:
            raise StoreError(unsupported_message(self.quantization, self._server))
        schema = collection_schema(client, self.dim)
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
                unsupported_message(self.quantization, self._server) + f" ({'; '.join(errors)})"
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
                lite_release(self.uri)
