"""int8 scalar-quantized vector index: exact scan over 1-byte codes, 1/4 of fp32 memory.

Why this shape:

* **Codes.** Each dimension ``d`` has a range ``[lo_d, lo_d + 255 * step_d]`` learned from the
  data; a vector is stored as ``code = round((x - lo) / step) - 128`` (int8). Dequantized,
  ``x ~= step * code + mid`` with ``mid = lo + 128 * step``, so a query is scored on the codes as
  ``codes @ (q * step) + q @ mid``: one multiply per stored byte, no dequantized copy. Values
  outside the range are clipped (counted, see ``details``).
* **Learning the ranges.** The first ``train_size`` vectors are kept in float32 (exact search,
  a few MB) and the ranges are learned from all of them at once, then every row is encoded. A
  rebuild (quantization switch, or ``store`` dropping the files) learns them afresh. Ranges come
  from low/high percentiles widened by a margin (measured: see ``bench/quant_bench.py``).
* **Search** is an exact scan: the codes are converted to float32 in slices of ``scan_rows``
  rows and scored with a BLAS matrix-vector product. Slices stay small on purpose: OpenBLAS
  starts threads past ~2k rows, which made the scan 10-30x *slower* on a busy 2-core machine.
  Big scans are split over a few threads. Measured (bench/quant_bench.py, 2 cores shared with
  other jobs, load ~10-14): p50 ~34 ms at 100k vectors, ~160 ms at 1M - which is why ``auto``
  prefers RaBitQ for large codebases; int8 is the near-exact choice at 1/4 of fp32 memory.
* **Layout.** Rows live in fixed blocks of ``block_rows`` (no reallocation, waste bounded by one
  block); ids in a ``SlotMap``. Deletes are tombstones, compacted when they pass 1/8 of the rows
  and whenever the index is saved (the file holds live rows only).

Persistence mirrors ``hnsw.py``: ``vectors.int8`` written to a temp file and renamed, then the
``vectors.json`` sidecar (generation, sizes, CRC32); any mismatch on load -> start empty and let
the store rebuild from SQLite. Thread-safety: the same readers-writer lock discipline.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import uuid
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from claude_context.index.base import Hit, VectorIndex
from claude_context.index.hnsw import _atomic_write_json, _file_crc32, _fsync_dir, _normalize, _RWLock
from claude_context.index.slots import SlotMap, dedupe_last, top_k

log = logging.getLogger(__name__)

_FORMAT = 1
_DATA_FILE = "vectors.int8"
_SIDECAR_FILE = "vectors.json"


class Int8VectorIndex(VectorIndex):
    """Scalar-quantized (int8) rows scanned exactly; scores are dequantized cosines."""

    kind = "int8"

    #: Rows kept in float32 until this many have been added; the ranges are learned from them.
    train_size: int = 4096
    #: Rows per block of storage (fixed-size blocks: growth never copies old rows).
    block_rows: int = 8192
    #: Rows converted and scored per BLAS call (keep <= ~1k: see the module docstring).
    scan_rows: int = 1024
    #: Percentiles of each dimension taken as its range, then widened by ``margin`` of the range.
    low_pct: float = 0.0
    high_pct: float = 100.0
    margin: float = 0.1
    #: Scans of at least this many rows use up to ``scan_threads`` threads.
    parallel_above: int = 65536
    scan_threads: int = max(1, min(4, os.cpu_count() or 1))

    def __init__(self, folder: Path, dim: int, *, train_size: int | None = None) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.folder = Path(folder)
        self.dim = dim
        if train_size is not None:
            self.train_size = max(1, int(train_size))
        self._rw = _RWLock()
        self._mutate = threading.Lock()
        self._closed = False
        self._generation: int | None = None
        self._reset()
        self._load()

    def _reset(self) -> None:
        self._blocks: list[np.ndarray] = []  # float32 rows until trained, then int8 codes
        self._slots = SlotMap()
        self._step: np.ndarray | None = None  # per-dimension step; None while untrained
        self._mid: np.ndarray | None = None
        self._clipped = 0  # components clipped on encode since the ranges were learned
        self._encoded = 0

    @property
    def data_path(self) -> Path:
        return self.folder / _DATA_FILE

    @property
    def sidecar_path(self) -> Path:
        return self.folder / _SIDECAR_FILE

    @property
    def trained(self) -> bool:
        return self._step is not None

    # ---------------------------------------------------------------- quantizer

    def _learn(self, x: np.ndarray) -> None:
        """Per-dimension ranges from ``x`` (float32 rows)."""
        if self.low_pct <= 0 and self.high_pct >= 100:
            lo, hi = x.min(axis=0), x.max(axis=0)
        else:
            lo, hi = np.percentile(x, [self.low_pct, self.high_pct], axis=0)
        width = np.maximum(hi - lo, 1e-6)
        lo = lo - self.margin * width
        step = (width * (1 + 2 * self.margin) / 255.0).astype(np.float32)
        self._step = step
        self._mid = (lo + 128.0 * step).astype(np.float32)

    def _encode(self, x: np.ndarray) -> np.ndarray:
        assert self._step is not None and self._mid is not None
        scaled = np.rint((x - self._mid) / self._step)
        out_of_range = (scaled < -128) | (scaled > 127)
        self._clipped += int(out_of_range.sum())
        self._encoded += x.size
        return np.clip(scaled, -128, 127).astype(np.int8)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        if self._step is None:
            return np.asarray(codes, dtype=np.float32)
        assert self._mid is not None
        return codes.astype(np.float32) * self._step + self._mid

    def _train_now(self) -> None:
        """Learn the ranges from the float32 rows held so far and encode every block."""
        n = self._slots.n_slots
        live = ~self._slots.dead_mask()
        rows = np.concatenate(self._blocks)[:n] if self._blocks else np.zeros((0, self.dim), np.float32)
        self._learn(rows[live] if live.any() else rows)
        self._blocks = [self._encode(b) for b in self._blocks]

    # ---------------------------------------------------------------- mutation

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Insert or replace (a replaced id's old row becomes a tombstone)."""
        vectors = np.asarray(vectors)
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        uniq, rows = dedupe_last(ids, vectors.shape[0])
        if not len(uniq):
            return
        vecs = _normalize(vectors[rows])
        with self._mutate:
            self._check_open()
            # Encode outside the write lock: searches keep running meanwhile.
            payload = self._encode(vecs) if self.trained else vecs
            with self._rw.write():
                self._slots.kill(_found(self._slots, uniq))
                self._append_rows(payload)
                self._slots.append(uniq)
                if not self.trained and self._slots.n_live >= self.train_size:
                    self._train_now()
                self._maybe_compact()

    def _append_rows(self, rows: np.ndarray) -> None:
        dtype = np.int8 if self.trained else np.float32
        n = self._slots.n_slots  # rows already stored (slots are appended right after)
        start = 0
        while start < len(rows):
            b, r = divmod(n, self.block_rows)
            take = min(len(rows) - start, self.block_rows - r)
            if b == len(self._blocks):
                self._blocks.append(np.zeros((0, self.dim), dtype))
            if r + take > len(self._blocks[b]):  # only the last block grows (doubling), the rest are full
                grown = np.zeros(
                    (min(self.block_rows, max(r + take, 2 * len(self._blocks[b]))), self.dim), dtype
                )
                grown[:r] = self._blocks[b][:r]
                self._blocks[b] = grown
            self._blocks[b][r : r + take] = rows[start : start + take]
            start += take
            n += take

    def delete(self, ids: Iterable[int]) -> None:
        arr = np.fromiter((int(i) for i in ids), dtype=np.int64)
        if not len(arr):
            return
        with self._mutate, self._rw.write():
            self._check_open()
            self._slots.kill(_found(self._slots, arr))
            self._maybe_compact()

    def _maybe_compact(self) -> None:
        """Drop tombstones once they pass 1/8 of the rows (caller holds the write lock)."""
        if self._slots.n_dead > max(1024, self._slots.n_slots // 8):
            self._compact()

    def _compact(self) -> None:
        keep = self._slots.live_slots()
        ids = self._slots.ids_of(keep)
        rows = self._rows(keep)
        self._blocks = []
        self._slots = SlotMap()
        self._append_rows(rows)
        self._slots.append(ids)

    def _rows(self, slots: np.ndarray) -> np.ndarray:
        """Stored rows (codes or float32) of the given slots, in that order."""
        if not len(slots):
            return np.zeros((0, self.dim), np.int8 if self.trained else np.float32)
        b, r = np.divmod(slots, self.block_rows)
        out = np.empty((len(slots), self.dim), self._blocks[0].dtype)
        for blk in np.unique(b):
            sel = b == blk
            out[sel] = self._blocks[blk][r[sel]]
        return out

    # ---------------------------------------------------------------- search

    def search(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[Hit]:
        """Best-first dequantized cosine; ``allowed`` scores only those ids' rows."""
        q = np.asarray(query)
        if q.ndim == 2 and q.shape[0] == 1:
            q = q[0]
        if q.shape != (self.dim,):
            raise ValueError(f"expected a query of shape ({self.dim},), got {q.shape}")
        q = _normalize(q.reshape(1, -1))[0]
        if k <= 0 or (allowed is not None and not allowed):
            return []
        with self._rw.read():
            self._check_open()
            if not self._slots.n_live:
                return []
            if self.trained:
                assert self._step is not None and self._mid is not None
                qs, offset = q * self._step, float(q @ self._mid)
            else:
                qs, offset = q, 0.0
            if allowed is not None:
                slots = _found(self._slots, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
                if len(slots) * 4 < self._slots.n_slots:  # selective: score just those rows
                    slots = np.sort(slots)
                    return self._hits(self._score(self._rows(slots), qs) + offset, slots, k)
                mask = np.zeros(self._slots.n_slots, np.bool_)
                mask[slots] = True
            else:
                mask = ~self._slots.dead_mask()
            scores = self._scan(qs) + offset
            slots = np.flatnonzero(mask)
            return self._hits(scores[slots], slots, k)

    def _scan(self, qs: np.ndarray) -> np.ndarray:
        """Scores of every slot; big indexes split the blocks over ``scan_threads`` threads
        (numpy releases the GIL in the conversion and the dot product)."""
        n = self._slots.n_slots
        out = np.empty(n, np.float32)
        blocks = list(range(len(self._blocks)))
        workers = min(self.scan_threads, len(blocks)) if n >= self.parallel_above else 1
        if workers <= 1:
            self._scan_blocks(blocks, qs, out, n)
            return out
        parts = [blocks[i::workers] for i in range(workers)]
        list(_executor(workers).map(lambda part: self._scan_blocks(part, qs, out, n), parts))
        return out

    def _scan_blocks(self, blocks: list[int], qs: np.ndarray, out: np.ndarray, n: int) -> None:
        buf = np.empty((self.scan_rows, self.dim), np.float32)
        for b in blocks:
            block, base = self._blocks[b], b * self.block_rows
            for s in range(0, min(self.block_rows, n - base), self.scan_rows):
                e = min(s + self.scan_rows, n - base)
                chunk = buf[: e - s]
                np.copyto(chunk, block[s:e], casting="unsafe")
                np.dot(chunk, qs, out=out[base + s : base + e])

    def _score(self, rows: np.ndarray, qs: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows), np.float32)
        for s in range(0, len(rows), self.scan_rows):
            np.dot(rows[s : s + self.scan_rows].astype(np.float32), qs, out=out[s : s + self.scan_rows])
        return out

    def _hits(self, scores: np.ndarray, slots: np.ndarray, k: int) -> list[Hit]:
        ids = self._slots.ids_of(slots)
        s, i = top_k(scores.astype(np.float32), ids, k)
        return [Hit(int(a), float(b)) for a, b in zip(i.tolist(), s.tolist(), strict=True)]

    def get_vectors(self, ids: Sequence[int]) -> np.ndarray:
        """Dequantized stored vectors in the order given; KeyError for ids not live."""
        arr = np.asarray([int(i) for i in ids], dtype=np.int64)
        with self._rw.read():
            self._check_open()
            slots = self._slots.find(arr)
            if (slots < 0).any():
                raise KeyError(f"ids not in the vector index: {arr[slots < 0][:10].tolist()}")
            return self._decode(self._rows(slots))

    # ---------------------------------------------------------------- introspection

    def ids(self) -> set[int]:
        with self._rw.read():
            return self._slots.live_ids()

    def count(self) -> int:
        return self._slots.n_live

    def resident_bytes(self) -> int:
        """Row blocks (codes) + slot map + the two per-dimension vectors."""
        blocks = sum(b.nbytes for b in self._blocks)
        return int(blocks + self._slots.nbytes() + 2 * 4 * self.dim)

    def details(self) -> dict[str, Any]:
        """Extra facts for ``status``: whether the ranges are learned yet, and the clip rate."""
        return {
            "mode": "int8 codes, exact scan" if self.trained else f"float32 until {self.train_size} vectors",
            "clipped_fraction": round(self._clipped / self._encoded, 6) if self._encoded else 0.0,
            "tombstones": self._slots.n_dead,
        }

    # ---------------------------------------------------------------- persistence

    def save(self, generation: int) -> None:
        """Write live rows + ids to a temp file, fsync, rename, then the sidecar (see hnsw.py)."""
        with self._mutate:
            self._check_open()
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f"{_DATA_FILE}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
            try:
                with self._rw.read():  # searches continue; mutators are held off by _mutate
                    keep = self._slots.live_slots()
                    ids = self._slots.ids_of(keep)
                    crc = 0
                    with open(tmp, "wb") as f:
                        for s in range(0, len(keep), 65536):
                            raw = np.ascontiguousarray(self._rows(keep[s : s + 65536])).tobytes()
                            crc = zlib.crc32(raw, crc)
                            f.write(raw)
                        raw = ids.astype("<i8").tobytes()
                        crc = zlib.crc32(raw, crc)
                        f.write(raw)
                        f.flush()
                        os.fsync(f.fileno())
                    meta = {
                        "format": _FORMAT,
                        "kind": self.kind,
                        "generation": int(generation),
                        "dim": self.dim,
                        "count": len(keep),
                        "trained": self.trained,
                        "step": None if self._step is None else self._step.tolist(),
                        "mid": None if self._mid is None else self._mid.tolist(),
                        "clipped": self._clipped,
                        "encoded": self._encoded,
                        "file_bytes": tmp.stat().st_size,
                        "crc32": crc,
                    }
                os.replace(tmp, self.data_path)
                _fsync_dir(self.folder)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            _atomic_write_json(self.sidecar_path, meta)
            self._generation = int(generation)
            if self._slots.n_dead:
                with self._rw.write():
                    self._compact()  # memory now matches the file: live rows only

    def _load(self) -> None:
        if not self.sidecar_path.exists() and not self.data_path.exists():
            return
        try:
            meta = json.loads(self.sidecar_path.read_text(encoding="utf-8"))
            if meta.get("format") != _FORMAT or meta.get("kind") != self.kind:
                raise ValueError("unknown sidecar format")
            if meta.get("dim") != self.dim:
                raise ValueError(f"dimension {meta.get('dim')} != {self.dim}")
            n, trained = int(meta["count"]), bool(meta["trained"])
            row_bytes = self.dim * (1 if trained else 4)
            size = self.data_path.stat().st_size
            if size != meta.get("file_bytes") or size != n * (row_bytes + 8):
                raise ValueError("data file size does not match the sidecar (interrupted save?)")
            if _file_crc32(self.data_path) != meta.get("crc32"):
                raise ValueError("data file checksum mismatch")
            raw = np.fromfile(self.data_path, dtype=np.uint8)
            rows = raw[: n * row_bytes].view(np.int8 if trained else np.float32).reshape(n, self.dim)
            ids = raw[n * row_bytes :].view("<i8").astype(np.int64)
            if len(np.unique(ids)) != n or (n and ids.min() < 0):
                raise ValueError("duplicate or negative ids")
            step = mid = None
            if trained:
                step = np.asarray(meta["step"], dtype=np.float32)
                mid = np.asarray(meta["mid"], dtype=np.float32)
                if step.shape != (self.dim,) or mid.shape != (self.dim,) or not (step > 0).all():
                    raise ValueError("bad quantizer ranges")
            generation = int(meta["generation"])
        except Exception as exc:  # corrupt, truncated, foreign or half-written: rebuild from SQLite
            log.warning("ignoring unusable vector index in %s (%s); starting empty", self.folder, exc)
            return
        self._step, self._mid = step, mid
        self._clipped, self._encoded = int(meta.get("clipped", 0)), int(meta.get("encoded", 0))
        self._append_rows(rows)
        self._slots = SlotMap(ids)
        self._generation = generation

    def saved_generation(self) -> int | None:
        return self._generation

    def close(self) -> None:
        with self._mutate, self._rw.write():
            if self._closed:
                return
            self._closed = True
            self._reset()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("vector index is closed")


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    """One small pool shared by every int8 index in the process (scans are short)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="int8-scan")
        return _pool


def _found(slots: SlotMap, ids: np.ndarray) -> np.ndarray:
    """Live slots of those ids that are present."""
    s = slots.find(ids)
    return s[s >= 0]
