"""RaBitQ vector index: 1-bit IVF codes in memory, exact re-rank from a memory-mapped fp16 file.

Why this shape (figures from ``bench/quant_bench.py``):

* **Candidates** come from ``rabitqlib.IvfIndex`` (the RaBitQ authors' library) with 1-bit
  codes (``nbits`` 1-9 is configurable): ~70 bytes per 384-d vector against 1,536 for fp32.
  1-bit estimates alone find only about half of the true top 10, so the index asks for
  ``max(min_candidates, oversample * k)`` candidates and **re-ranks** them exactly.
* **Re-rank vectors** are fp16 rows on disk in ``vectors.<token>.f16``, read with positional
  reads: the OS page cache keeps the hot ones (shared, evictable), the process holds only the
  ~100 rows a query copies, so they are not counted as resident. (A ``np.memmap`` was measured
  to map nearly the whole file into the process after a few queries: see ``F16Rows``.) Rows added
  since the last save sit in a private, unlinked scratch file (never in the shared file: reader
  processes patch their own copy, like ``hnsw.py``, and must not write where the writer
  appends); ``save`` appends them to the shared file.
* **Ids.** rabitqlib numbers points 0, 1, 2... (uint32) in insertion order, never reusing a
  number; those are our *slots*. A ``SlotMap`` maps chunk ids (int64) to slots in ~13 bytes a
  vector. Replacing an id kills its old slot (``IvfIndex.remove``) and appends a new one.
* **Pending rows.** ``IvfIndex.add`` copies the whole index, so new rows are first scanned
  exactly (``pending_limit`` at most) and then added to the IVF in one batch.
* **Small collections.** Below ``min_train`` live vectors there is no IVF: search is an exact
  scan of the fp16 rows (a few ms), reported as such in ``details``.
* **Re-clustering.** rabitqlib's centroids never move on ``add``. When the live count has grown
  or shrunk by ``grow_factor`` since the last build, or dead slots pass ``churn_limit`` of the
  stored ones, the index is rebuilt from its own fp16 rows (no re-embedding): a background
  thread trains k-means on a sample, writes a compacted row file and a new IVF, then swaps it in
  under a short lock, replaying the adds and deletes that happened meanwhile. Searches keep
  using the old index until the swap.

Persistence follows ``hnsw.py``: each file is written to a temp name and renamed, the
``vectors.json`` sidecar (generation, sizes, CRC32s) last; anything inconsistent on load ->
start empty, and the store rebuilds from SQLite and the embedding cache.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from claude_context.index.base import Hit, VectorIndex
from claude_context.index.files import atomic_write_json, crc32_of, fsync_dir, unlink, write_replace
from claude_context.index.vectors.rabitq_ivf import Reclustering, assign_clusters, trim_heap
from claude_context.index.vectors.rows import ROW_DTYPE, SIDECAR_FILE, F16Rows, RowBacked, rows_name
from claude_context.index.vectors.slots import SlotMap, dedupe_last, found, matvec, top_k
from claude_context.index.vectors.vecutil import RWLock, as_rows, normalize

log = logging.getLogger(__name__)

_FORMAT = 1
_IVF_FILE = "vectors.rabitq"
_SLOTS_FILE = "vectors.slots"
_NONE = 2**32 - 1  # rabitqlib's "no result" id


class RabitqVectorIndex(Reclustering, RowBacked, VectorIndex):
    """IVF-RaBitQ candidates + fp16 re-rank; exact scan while small (see module docstring)."""

    kind = "rabitq"

    #: Bits per dimension of the in-memory codes (1-9); 1 keeps memory ~1/20 of fp32.
    nbits: int = 1
    #: Candidates re-ranked per query: ``max(min_candidates, oversample * k)``.
    oversample: float = 4.0
    min_candidates: int = 100
    #: Fraction of IVF clusters probed per query (at least ``min_nprobe``).
    probe_fraction: float = 0.2
    min_nprobe: int = 8
    probe_cover: float = 8.0
    #: Below this many live vectors there is no IVF: exact scan of the fp16 rows.
    min_train: int = 10_000
    #: Rebuild (re-cluster + compact) when live count changed by this factor since the last build...
    grow_factor: float = 2.0
    #: ...or dead slots exceed this fraction of stored slots.
    churn_limit: float = 0.25
    #: New rows scanned exactly before being added to the IVF in one batch.
    pending_limit: int = 4096
    #: ``allowed`` sets up to this size (after intersecting with live ids) are scored exactly.
    exact_limit: int = 20_000
    threads: int = 2
    retry_after_s: float = 300.0

    def __init__(
        self,
        folder: Path,
        dim: int,
        *,
        nbits: int | None = None,
        oversample: float | None = None,
        min_train: int | None = None,
        background: bool = True,
    ) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        import rabitqlib  # noqa: F401 - fail early if missing

        self.folder = Path(folder)
        self.dim = dim
        if nbits is not None:
            if not 1 <= nbits <= 9:
                raise ValueError(f"nbits must be 1-9, got {nbits}")
            self.nbits = nbits
        if oversample is not None:
            self.oversample = float(oversample)
        if min_train is not None:
            self.min_train = max(1, int(min_train))
        self.background = background
        self._rw = RWLock()
        self._mutate = threading.Lock()
        self._closed = False
        self._generation: int | None = None
        self._token = uuid.uuid4().hex[:12]
        self._slots = SlotMap()
        self._rows = F16Rows(self.folder, dim, self.folder / rows_name(self._token))
        self._ivf: Any | None = None
        self._centroids: np.ndarray | None = None
        self._n_ivf = 0  # slots [0, _n_ivf) are in the IVF; the rest are pending
        self._built_live = 0  # live count at the last build
        self._rebuild_thread: threading.Thread | None = None
        self._building_token: str | None = None
        self._cancel = threading.Event()
        self._retry_at = 0.0  # after a failed rebuild, wait before trying again
        self.rebuilds = 0
        self._load()
        trim_heap()  # after _load's buffers are gone

    # ---------------------------------------------------------------- mutation

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Insert or replace; a replaced id's old slot is removed from the IVF."""
        vectors = as_rows(vectors, self.dim)
        uniq, rows = dedupe_last(ids, vectors.shape[0])
        if not len(uniq):
            return
        vecs = normalize(vectors[rows]).astype(ROW_DTYPE)
        with self._mutate:
            self._check_open()
            with self._rw.write():
                self._kill(found(self._slots, uniq))
                self._rows.append(vecs)
                self._slots.append(uniq)
            self._maybe_flush()
            self._maybe_rebuild()

    def delete(self, ids: Iterable[int]) -> None:
        arr = np.fromiter((int(i) for i in ids), dtype=np.int64)
        if not len(arr):
            return
        with self._mutate:
            self._check_open()
            with self._rw.write():
                self._kill(found(self._slots, arr))
            self._maybe_rebuild()

    def _kill(self, slots: np.ndarray) -> None:
        """Caller holds the write lock."""
        if not len(slots):
            return
        self._slots.kill(slots)
        in_ivf = slots[slots < self._n_ivf]
        if self._ivf is not None and len(in_ivf):
            self._ivf.remove(in_ivf.astype(np.uint32))

    def _maybe_flush(self) -> None:
        """Move pending rows into the IVF once there are ``pending_limit`` of them (holds _mutate)."""
        pending = self._slots.n_slots - self._n_ivf
        if self._ivf is None or pending < self.pending_limit:
            return
        lo, hi = self._n_ivf, self._slots.n_slots
        with self._rw.read():
            x = self._rows.range(lo, hi)
            dead = np.flatnonzero(self._slots.dead_mask(lo, hi)) + lo
        assign = assign_clusters(x, self._centroids)
        with self._rw.write():
            got = self._ivf.add(x, cluster_ids=assign, num_threads=self.threads)
            if len(got) != hi - lo or int(got[0]) != lo:
                raise RuntimeError(f"rabitqlib numbered new points from {got[0]}, expected {lo}")
            if len(dead):
                self._ivf.remove(dead.astype(np.uint32))
            self._n_ivf = hi

    # ---------------------------------------------------------------- search

    def search(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[Hit]:
        """Best-first cosine (fp16 re-rank); ``allowed`` restricts to those ids."""
        q = self._unit_query(query)
        if k <= 0 or (allowed is not None and not allowed):
            return []
        with self._rw.read():
            self._check_open()
            if not self._slots.n_live:
                return []
            mask = None
            if allowed is not None:
                cand = np.sort(found(self._slots, np.fromiter(allowed, np.int64, count=len(allowed))))
                if len(cand) <= self.exact_limit or self._ivf is None:
                    return self._exact(q, k, cand)
                mask = np.zeros(self._slots.n_slots, np.bool_)
                mask[cand] = True
            elif self._ivf is None:
                return self._exact_all(q, k)
            hits = self._ivf_search(q, k, mask)
            if mask is not None and len(hits) < k:  # a very selective filter: be exact instead
                return self._exact(q, k, np.flatnonzero(mask))
            return hits

    def _ivf_search(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> list[Hit]:
        want = max(self.min_candidates, math.ceil(self.oversample * k))
        if mask is not None:  # widen by the filter's selectivity so ~want candidates survive it
            want = math.ceil(want * self._slots.n_live / max(1, int(mask.sum())))
        live_in_ivf = max(1, self._n_ivf - (self._slots.n_slots - self._slots.n_live))
        want = min(want, live_in_ivf, 65536)
        pending = np.arange(self._n_ivf, self._slots.n_slots, dtype=np.int64)
        if len(pending):
            pending = pending[self._slots.is_live(pending)]
        nc, nprobe = len(self._centroids), self.nprobe(want)
        available = self._slots.n_live if mask is None else int(mask.sum())
        while True:
            ids, _ = self._ivf.search(q.reshape(1, -1), want, nprobe)
            cand = np.concatenate([ids[0][ids[0] != _NONE].astype(np.int64), pending])
            if mask is not None:
                cand = cand[mask[cand]]
            # The probed clusters may hold fewer than k (large k, selective filter): probe more.
            if len(cand) >= min(k, available) or nprobe >= nc:
                break
            nprobe = min(nc, nprobe * 4)
        return self._rerank(q, k, np.sort(cand))

    def _rerank(self, q: np.ndarray, k: int, slots: np.ndarray) -> list[Hit]:
        scores = matvec(self._rows.take(slots), q)
        s, sl = top_k(scores, slots, k)
        ids = self._slots.ids_of(sl)
        return [Hit(int(i), float(v)) for i, v in zip(ids.tolist(), s.tolist(), strict=True)]

    def _exact(self, q: np.ndarray, k: int, slots: np.ndarray) -> list[Hit]:
        best_s, best_k = np.zeros(0, np.float32), np.zeros(0, np.int64)
        for lo in range(0, len(slots), 65536):
            part = slots[lo : lo + 65536]
            scores = matvec(self._rows.take(part), q)
            best_s, best_k = top_k(np.concatenate([best_s, scores]), np.concatenate([best_k, part]), k)
        ids = self._slots.ids_of(best_k)
        return [Hit(int(i), float(v)) for i, v in zip(ids.tolist(), best_s.tolist(), strict=True)]

    def _exact_all(self, q: np.ndarray, k: int) -> list[Hit]:
        n = self._slots.n_slots
        best_s, best_k = np.zeros(0, np.float32), np.zeros(0, np.int64)
        for lo in range(0, n, 65536):
            hi = min(n, lo + 65536)
            scores = matvec(self._rows.range(lo, hi), q)
            part = np.arange(lo, hi, dtype=np.int64)
            live = ~self._slots.dead_mask(lo, hi)
            best_s, best_k = top_k(
                np.concatenate([best_s, scores[live]]), np.concatenate([best_k, part[live]]), k
            )
        ids = self._slots.ids_of(best_k)
        return [Hit(int(i), float(v)) for i, v in zip(ids.tolist(), best_s.tolist(), strict=True)]

    # ---------------------------------------------------------------- introspection

    def ivf_bytes(self) -> int:
        """rabitqlib's in-memory size, from its layout (checked against its files in the tests):
        per point the code (dim*nbits/8), 3-5 float factors and a uint32 id; per cluster the
        centroid and padding of its last 32-point FastScan batch."""
        if self._ivf is None:
            return 0
        per_point = self.dim * self.nbits / 8 + 16 + (8 if self.nbits > 1 else 0)
        # our centroid copy, not ``self._ivf.num_clusters``: rabitqlib raises "Index is busy" for
        # any call while another thread adds or removes, and status is read without our lock
        nc = 0 if self._centroids is None else len(self._centroids)
        return int(self._n_ivf * per_point + nc * (self.dim * 4 + 16 * (self.dim / 8 + 16)) + 4096)

    def resident_bytes(self) -> int:
        """IVF codes + our centroid copy + slot map. The fp16 re-rank rows stay on disk (read
        through the page cache per query, see ``F16Rows``), so they are not counted."""
        cent = 0 if self._centroids is None else self._centroids.nbytes
        return self.ivf_bytes() + cent + self._slots.nbytes()

    def details(self) -> dict[str, Any]:
        if self._ivf is None:
            mode = f"exact scan of fp16 rows (IVF starts at {self.min_train} vectors)"
        else:
            mode = f"IVF {self.nbits}-bit RaBitQ + fp16 re-rank"
        return {
            "mode": mode,
            "clusters": 0 if self._centroids is None else len(self._centroids),
            "nprobe": self.nprobe(),
            "oversample": self.oversample,
            "pending": self._slots.n_slots - self._n_ivf if self._ivf is not None else 0,
            "dead_slots": self._slots.n_dead,
            "rebuilding": self._rebuild_thread is not None and self._rebuild_thread.is_alive(),
            "rerank_file_bytes": self._rows.n_file * self._rows.row_bytes,
        }

    # ---------------------------------------------------------------- persistence

    def save(self, generation: int) -> None:
        """Append new rows to the row file, rewrite the IVF and slot files, then the sidecar."""
        with self._mutate:
            self._check_open()
            self.folder.mkdir(parents=True, exist_ok=True)
            self._persist_rows()
            with self._rw.read():  # searches continue; mutators are held off by _mutate
                ivf_path = self.folder / _IVF_FILE
                if self._ivf is not None:
                    ivf_size, ivf_crc = write_replace(ivf_path, writer=self._ivf.save)
                else:
                    ivf_size, ivf_crc = 0, 0
                    unlink(ivf_path)
                n = self._slots.n_slots
                blob = (
                    self._slots.all_ids().astype("<i8").tobytes()
                    + self._slots.all_dead().astype(np.uint8).tobytes()
                    + (b"" if self._centroids is None else self._centroids.astype("<f4").tobytes())
                )
                slots_size, slots_crc = write_replace(self.folder / _SLOTS_FILE, blob)
                meta = {
                    "format": _FORMAT,
                    "kind": self.kind,
                    "generation": int(generation),
                    "dim": self.dim,
                    "nbits": self.nbits,
                    "slots": n,
                    "live": self._slots.n_live,
                    "n_ivf": self._n_ivf if self._ivf is not None else 0,
                    "clusters": 0 if self._centroids is None else len(self._centroids),
                    "built_live": self._built_live,
                    "token": self._token,
                    "rows_crc32": self._rows.crc,
                    "ivf_bytes": ivf_size,
                    "ivf_crc32": ivf_crc,
                    "slots_bytes": slots_size,
                    "slots_crc32": slots_crc,
                }
                assert self._rows.n_file == n
            fsync_dir(self.folder)
            atomic_write_json(self.folder / SIDECAR_FILE, meta)
            self._generation = int(generation)
            self._drop_stale_rows(self._building_token)

    def _load(self) -> None:
        if not (self.folder / SIDECAR_FILE).exists():
            return
        try:
            from rabitqlib import IvfIndex

            meta = self._sidecar_meta(_FORMAT)
            n, n_ivf, nc = int(meta["slots"]), int(meta["n_ivf"]), int(meta["clusters"])
            token = str(meta["token"])
            slots_path = self.folder / _SLOTS_FILE
            blob = slots_path.read_bytes()
            if len(blob) != meta["slots_bytes"] or zlib.crc32(blob) != meta["slots_crc32"]:
                raise ValueError("slot file does not match the sidecar")
            if len(blob) != n * 9 + nc * self.dim * 4:
                raise ValueError("slot file has the wrong size")
            ids = np.frombuffer(blob, "<i8", n, 0).astype(np.int64)
            dead = np.frombuffer(blob, np.uint8, n, n * 8).astype(np.bool_)
            centroids = np.frombuffer(blob, "<f4", nc * self.dim, n * 9).reshape(nc, self.dim).copy()
            live = ids[~dead]
            if len(np.unique(live)) != len(live) or (n and ids.min() < 0):
                raise ValueError("duplicate or negative ids")
            ivf = None
            if n_ivf:
                ivf_path = self.folder / _IVF_FILE
                if ivf_path.stat().st_size != meta["ivf_bytes"]:
                    raise ValueError("IVF file size does not match the sidecar")
                if crc32_of(ivf_path, meta["ivf_bytes"]) != meta["ivf_crc32"]:
                    raise ValueError("IVF file checksum mismatch")
                ivf = IvfIndex.load(str(ivf_path))
                if (
                    ivf.dim != self.dim
                    or ivf.num_stored_points != n_ivf
                    or ivf.num_clusters != nc
                    or n_ivf > n
                    or ivf.metric != "ip"
                ):
                    raise ValueError("IVF file does not match the sidecar")
            rows = self._open_rows(token, n, int(meta["rows_crc32"]))
        except Exception as exc:  # corrupt, truncated, foreign or half-written: rebuild from SQLite
            log.warning("ignoring unusable vector index in %s (%s); starting empty", self.folder, exc)
            return
        self._token, self._rows = token, rows
        self._slots = SlotMap(ids, dead)
        self._ivf = ivf
        self._centroids = centroids if nc else None
        if ivf is not None:
            self.nbits = int(ivf.nbits)
        self._n_ivf = n_ivf
        self._built_live = int(meta.get("built_live", 0))
        self._generation = int(meta["generation"])

    def close(self) -> None:
        self._cancel.set()
        thread = self._rebuild_thread
        if thread is not None:
            thread.join(60)
        with self._mutate, self._rw.write():
            if self._closed:
                return
            self._closed = True
            self._rows.close()
            self._slots = SlotMap()
            self._ivf = None
            self._centroids = None
