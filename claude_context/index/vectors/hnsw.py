"""hnswlib-backed vector index (inner product on L2-normalized vectors, scores are cosine).

Why the bookkeeping below: hnswlib's ``replace_deleted=True`` reuses an arbitrary deleted slot,
and if the label being added is still present in the graph (live, or deleted but not yet
reused) the label ends up in two slots and is returned twice. So ``add`` splits every batch:

* live ids are updated in place (plain ``add_items``),
* ids that were deleted and whose slot may still exist are ``unmark_deleted`` and updated,
* only genuinely absent ids go through ``replace_deleted=True``.

hnswlib does not expose which deleted labels still own a slot, nor the number of live
elements, so we keep ``_live`` (exact) and ``_maybe_deleted`` (a superset of the deleted
labels still owning a slot); the sidecar persists the latter so a reload can tell live from
deleted labels.

Locking: ``_rw`` is a readers-writer lock. Searches, ``ids``, ``get_vectors`` and ``save``
read; add/delete/resize write. ``_mutate`` serialises mutators and ``save`` against each other
so a save sees a quiescent index while searches keep running. ``ef`` is set once and never
changed afterwards: deeper searches ask hnswlib for more results instead (it uses
``max(ef, k)``), so concurrent searches never race on shared state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from claude_context.index.base import Hit, VectorIndex
from claude_context.index.files import atomic_write_json, crc32_of, fsync_dir
from claude_context.index.vectors.vecutil import RWLock, as_rows, normalize

log = logging.getLogger(__name__)

_FORMAT = 1
_INDEX_FILE = "vectors.hnsw"
_SIDECAR_FILE = "vectors.json"
# hnswlib header: offsetLevel0, max_elements, cur_count, size_per_element, label_offset, offsetData
# (size_t), maxlevel (int), enterpoint (uint32), maxM, maxM0, M (size_t), mult (double),
# ef_construction (size_t).
_HEADER = struct.Struct("<6Q i I 3Q d Q")


class HnswVectorIndex(VectorIndex):
    """HNSW graph in ``folder/vectors.hnsw`` with a JSON sidecar stamping the store generation."""

    kind = "hnsw"

    #: ``allowed`` sets at most this large (after intersecting with live ids) are scored exactly.
    #: hnswlib's ``get_items`` costs ~1-15 us per vector, so beyond ~1k ids the filtered graph
    #: walk (recall ~1.0 for selective filters) is faster than fetching vectors to score them.
    exact_limit: int = 1000
    #: Adds are applied in slices this big, each under the write lock, so searches interleave
    #: with a bulk load: a slice takes ~50-100 ms of fresh inserts, or up to ~1 s when every
    #: vector is re-inserted into a deleted slot (hnswlib repairs neighbours, ~5-10x slower).
    add_slice: int = 256
    add_threads: int = -1  # hnswlib's threads per add: -1 one per core, 1 leaves them to searches

    def __init__(
        self,
        folder: Path,
        dim: int,
        *,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 96,
        initial_capacity: int = 1024,
    ) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.folder = Path(folder)
        self.dim = dim
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.initial_capacity = max(1, initial_capacity)
        self._rw = RWLock()
        self._mutate = threading.Lock()
        self._live: set[int] = set()
        self._maybe_deleted: set[int] = set()
        self._vacant = 0  # deleted slots hnswlib can reuse (== its deleted_elements size)
        self._generation: int | None = None
        self._closed = False
        self._index = self._new_index()
        self._load()

    # ---------------------------------------------------------------- construction / loading

    @property
    def index_path(self) -> Path:
        return self.folder / _INDEX_FILE

    @property
    def sidecar_path(self) -> Path:
        return self.folder / _SIDECAR_FILE

    def _new_index(self) -> hnswlib.Index:
        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(
            max_elements=self.initial_capacity,
            M=self.m,
            ef_construction=self.ef_construction,
            allow_replace_deleted=True,
        )
        index.set_ef(self.ef_search)
        return index

    def _load(self) -> None:
        """Load the saved index if it and its sidecar agree; otherwise stay empty (store rebuilds)."""
        if not self.sidecar_path.exists() and not self.index_path.exists():
            return
        try:
            meta = json.loads(self.sidecar_path.read_text(encoding="utf-8"))
            self._check_files(meta)
            index = hnswlib.Index(space="ip", dim=self.dim)
            index.load_index(str(self.index_path), max_elements=0, allow_replace_deleted=True)
            labels = set(index.get_ids_list())
            deleted = {int(i) for i in meta["deleted"]}
            live = labels - deleted
            if len(live) != meta["count"] or index.element_count != len(labels):
                raise ValueError("live/deleted bookkeeping does not match the graph")
            index.set_ef(self.ef_search)
        except Exception as exc:  # corrupt, truncated, foreign or half-written: rebuild from SQLite
            log.warning("ignoring unusable vector index in %s (%s); starting empty", self.folder, exc)
            return
        self._index = index
        self._live = live
        self._maybe_deleted = deleted & labels
        self._vacant = index.element_count - len(live)
        self._generation = int(meta["generation"])
        self.m = int(index.M)
        self.ef_construction = int(index.ef_construction)

    def _check_files(self, meta: dict[str, Any]) -> None:
        """Cheap checks so hnswlib never sees a file that could make it allocate garbage or crash."""
        if meta.get("format") != _FORMAT or meta.get("space") != "ip":
            raise ValueError("unknown sidecar format")
        if meta.get("dim") != self.dim:
            raise ValueError(f"dimension {meta.get('dim')} != {self.dim}")
        if not isinstance(meta.get("generation"), int) or not isinstance(meta.get("deleted"), list):
            raise ValueError("sidecar misses generation/deleted")
        size = self.index_path.stat().st_size
        if size != meta.get("file_bytes"):
            raise ValueError("index file size does not match the sidecar (interrupted save?)")
        with open(self.index_path, "rb") as f:
            raw = f.read(_HEADER.size)
        if len(raw) != _HEADER.size:
            raise ValueError("truncated header")
        (off0, max_el, count, per_el, label_off, off_data, maxlevel, enter, max_m, max_m0, m, _mult, _efc) = (
            _HEADER.unpack(raw)
        )
        links0 = max_m0 * 4 + 4
        if not (
            off0 == 0
            and 0 < m <= 1024
            and max_m == m
            and max_m0 == 2 * m
            and off_data == links0
            and label_off == links0 + self.dim * 4
            and per_el == label_off + 8
            and count <= max_el < 2**32  # hnswlib slots are uint32
            and count == meta.get("elements")
            and -1 <= maxlevel < 256
            and (count == 0 or enter < count)
            and size >= _HEADER.size + count * (per_el + 4)
        ):
            raise ValueError("implausible hnswlib header")
        if crc32_of(self.index_path) != meta.get("crc32"):
            raise ValueError("index file checksum mismatch")

    # ---------------------------------------------------------------- mutation

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Insert or replace; a re-added id keeps exactly one slot (see module docstring)."""
        vectors = as_rows(vectors, self.dim)
        if len(ids) != vectors.shape[0]:
            raise ValueError(f"{len(ids)} ids for {vectors.shape[0]} vectors")
        if not len(ids):
            return
        # Last occurrence wins for ids repeated within one call.
        last: dict[int, int] = {}
        for row, i in enumerate(ids):
            i = int(i)
            if i < 0:
                raise ValueError(f"ids must be non-negative, got {i}")
            last[i] = row
        id_arr = np.fromiter(last.keys(), dtype=np.uint64, count=len(last))
        rows = np.fromiter(last.values(), dtype=np.int64, count=len(last))
        vecs = normalize(vectors[rows])
        with self._mutate:
            self._check_open()
            for start in range(0, len(id_arr), self.add_slice):
                stop = start + self.add_slice
                self._add_slice(id_arr[start:stop], vecs[start:stop])

    def _add_slice(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        with self._rw.write():
            update_rows: list[int] = []
            new_rows: list[int] = []
            for row, i in enumerate(ids.tolist()):
                if i in self._live:
                    update_rows.append(row)
                elif i in self._maybe_deleted:
                    self._maybe_deleted.discard(i)
                    try:
                        self._index.unmark_deleted(i)
                    except RuntimeError:  # its slot was reused by another label: it is absent
                        new_rows.append(row)
                    else:
                        self._vacant -= 1
                        self._live.add(i)
                        update_rows.append(row)
                else:
                    new_rows.append(row)
            if update_rows:
                self._index.add_items(vecs[update_rows], ids[update_rows], num_threads=self.add_threads)
            if new_rows:
                n_new = len(new_rows)
                needed = self._index.element_count + max(0, n_new - self._vacant)
                if needed > self._index.max_elements:
                    self._index.resize_index(max(needed, 2 * self._index.max_elements))
                vecs_new, ids_new = vecs[new_rows], ids[new_rows]
                self._index.add_items(vecs_new, ids_new, num_threads=self.add_threads, replace_deleted=True)
                self._vacant = max(0, self._vacant - n_new)
                self._live.update(ids_new.tolist())

    def delete(self, ids: Iterable[int]) -> None:
        with self._mutate, self._rw.write():
            self._check_open()
            for i in ids:
                i = int(i)
                if i in self._live:
                    self._index.mark_deleted(i)
                    self._live.discard(i)
                    self._maybe_deleted.add(i)
                    self._vacant += 1

    # ---------------------------------------------------------------- search

    def search(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[Hit]:
        """Best-first cosine hits; small ``allowed`` sets are scored exactly, large ones filtered."""
        q = np.asarray(query)
        if q.ndim == 2 and q.shape[0] == 1:
            q = q[0]
        if q.shape != (self.dim,):
            raise ValueError(f"expected a query of shape ({self.dim},), got {q.shape}")
        q = normalize(q.reshape(1, -1))
        if k <= 0 or (allowed is not None and not allowed):
            return []
        with self._rw.read():
            self._check_open()
            n_live = len(self._live)
            if not n_live:
                return []
            if allowed is None:
                return self._knn(q, k, min(k, n_live), None)
            if len(allowed) <= self.exact_limit:
                return self._exact(q, k, [i for i in allowed if i in self._live])
            cand = allowed & self._live
            if len(cand) <= self.exact_limit:
                return self._exact(q, k, list(cand))
            # Ask for more results than k: hnswlib searches with ef = max(ef, k), so this widens
            # the beam for the filtered walk without touching the shared ef setting.
            want = min(len(cand), 2 * max(k, self.ef_search))
            return self._knn(q, k, want, cand.__contains__)

    def _knn(self, q: np.ndarray, k: int, want: int, filt: Any) -> list[Hit]:
        """hnswlib raises when it finds fewer than ``want`` results: retry smaller, never raise."""
        k = min(k, want)
        tries = [want]
        while tries[-1] > k:
            tries.append(max(k, tries[-1] // 2))
        while tries[-1] > 1:
            tries.append(tries[-1] // 2)
        for n in tries:
            try:
                labels, dists = self._index.knn_query(q, k=n, num_threads=1, filter=filt)
            except RuntimeError:
                continue
            return [
                Hit(int(i), float(1.0 - d))
                for i, d in zip(labels[0][:k].tolist(), dists[0][:k].tolist(), strict=True)
            ]
        return []

    def _exact(self, q: np.ndarray, k: int, cand: list[int]) -> list[Hit]:
        if not cand:
            return []
        vecs = np.asarray(self._index.get_items(cand, return_type="numpy"), dtype=np.float32)
        scores = vecs @ q[0]
        ids = np.asarray(cand, dtype=np.int64)
        k = min(k, len(cand))
        if k < len(cand):
            top = np.argpartition(-scores, k - 1)[:k]
            scores, ids = scores[top], ids[top]
        order = np.lexsort((ids, -scores))  # best score first, ties by id for determinism
        return [
            Hit(int(i), float(s)) for i, s in zip(ids[order].tolist(), scores[order].tolist(), strict=True)
        ]

    def get_vectors(self, ids: Sequence[int]) -> np.ndarray:
        """Stored (normalized) vectors in the order given; KeyError for ids not live."""
        ids = [int(i) for i in ids]
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._rw.read():
            self._check_open()
            missing = [i for i in ids if i not in self._live]
            if missing:
                raise KeyError(f"ids not in the vector index: {missing[:10]}")
            return np.asarray(self._index.get_items(ids, return_type="numpy"), dtype=np.float32)

    # ---------------------------------------------------------------- introspection

    def ids(self) -> set[int]:
        with self._rw.read():
            return set(self._live)

    def count(self) -> int:
        return len(self._live)

    def capacity(self) -> int:
        return int(self._index.max_elements)

    def resident_bytes(self) -> int:
        """max_elements x (vector + level-0 links + label/lock/level/lookup overhead) + Python sets."""
        per_element = self.dim * 4 + (2 * self.m + 1) * 4 + 8 + 120
        return int(self._index.max_elements) * per_element + 70 * (len(self._live) + len(self._maybe_deleted))

    # ---------------------------------------------------------------- persistence

    def save(self, generation: int) -> None:
        """Write to a temp file, fsync, rename over the old file, then rename the sidecar in.

        A crash between the two renames leaves a sidecar that no longer matches the file (size
        and checksum), so the next load starts empty and the store rebuilds from SQLite.
        """
        with self._mutate:
            self._check_open()
            self.folder.mkdir(parents=True, exist_ok=True)
            # Named vectors.* so a crash leftover goes away with the index (store.reset_index).
            tmp = self.folder / f"{_INDEX_FILE}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
            try:
                with self._rw.read():  # searches continue; mutators are held off by _mutate
                    self._index.save_index(str(tmp))
                    labels = set(self._index.get_ids_list())
                    elements = int(self._index.element_count)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                crc = crc32_of(tmp)
                size = tmp.stat().st_size
                os.replace(tmp, self.index_path)
                fsync_dir(self.folder)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            self._maybe_deleted &= labels  # labels whose slot was reused are gone for good
            meta = {
                "format": _FORMAT,
                "generation": int(generation),
                "dim": self.dim,
                "space": "ip",
                "count": len(self._live),
                "elements": elements,
                "file_bytes": size,
                "crc32": crc,
                "params": {"M": self.m, "ef_construction": self.ef_construction, "ef_search": self.ef_search},
                "deleted": sorted(self._maybe_deleted),
            }
            atomic_write_json(self.sidecar_path, meta)
            self._generation = int(generation)

    def saved_generation(self) -> int | None:
        return self._generation

    def close(self) -> None:
        with self._mutate, self._rw.write():
            if self._closed:
                return
            self._closed = True
            self._live = set()
            self._maybe_deleted = set()
            self._index = self._new_index_placeholder()

    def _new_index_placeholder(self) -> hnswlib.Index:
        """A 1-slot index so the big graph's memory is released on close."""
        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(max_elements=1, M=self.m, ef_construction=self.ef_construction)
        return index

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("vector index is closed")


class MemoryHnswIndex(HnswVectorIndex):
    """The same graph in memory only, never loaded nor saved: for vectors whose truth is kept
    elsewhere (the static table's graph, ``embedding/static.py``: its vectors are in the cache)."""

    kind = "hnsw-memory"

    def __init__(self, dim: int, **kwargs: Any) -> None:
        super().__init__(Path(), dim, **kwargs)  # no folder is ever read (``_load``) or written

    def _load(self) -> None:
        return

    def save(self, generation: int) -> None:
        raise ValueError("an in-memory vector index has no files to save")
