"""int8 scalar-quantized vector index: a scan over 1-byte codes, then an fp16 re-rank from disk.

Why this shape:

* **Codes.** Each dimension ``d`` has a range ``[lo_d, lo_d + 255 * step_d]`` learned from the
  data; a vector is stored as ``code = round((x - lo) / step) - 128`` (int8). Dequantized,
  ``x ~= step * code + mid`` with ``mid = lo + 128 * step``, so a query is scored on the codes as
  ``codes @ (q * step) + q @ mid``: one multiply per stored byte, no dequantized copy. Values
  outside the range are clipped (counted, see ``details``).
* **Re-rank.** Codes alone find ~97.5% of the true top 10 at 1M near-duplicate vectors (their
  scores differ by less than the quantization error). So the scan keeps the best
  ``max(min_candidates, oversample * k)`` slots and re-scores them with fp16 rows kept on disk
  (``rows.F16Rows``, positional reads through the page cache, not resident): 20 candidates gave
  recall@10 0.9995 at 1M (bench/quant_bench.py). Resident memory stays the codes: 1/4 of fp32.
* **Learning the ranges.** The first ``train_size`` vectors are kept in float32 (exact search,
  a few MB) and the ranges are learned from all of them at once, then every row is encoded. A
  rebuild (quantization switch, or ``store`` dropping the files) learns them afresh. Ranges are
  min/max widened by a margin (clipping at percentiles gained nothing once re-ranked).
* **Scan** of the codes converts them to float32 in slices of ``scan_rows`` rows and scores them
  with a BLAS matrix-vector product. Slices stay small on purpose: OpenBLAS starts threads past
  ~2k rows, which made the scan 10-30x *slower* on a busy 2-core machine. Big scans are split
  over a few threads. It is linear in the vectors (~160 ms at 1M on a loaded 2-core machine),
  which is why ``auto`` prefers RaBitQ for large codebases.
* **Slots.** Rows are append-only slots (codes in fixed blocks, fp16 rows at the same row
  number on disk); ids map to slots in a ``SlotMap``. Deletes are tombstones; ``save`` compacts
  both (a new row file) once they pass ``compact_fraction`` of the slots.

Persistence mirrors ``rabitq.py``: new fp16 rows are appended to the shared row file, the codes
file is written to a temp name and renamed, the ``vectors.json`` sidecar (generation, sizes,
CRC32s) last; any mismatch on load -> start empty and let the store rebuild from SQLite.
Thread-safety: the same readers-writer lock discipline as the other indexes.
"""

from __future__ import annotations

import logging
import math
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
from claude_context.index.files import atomic_write_json, crc32_of, fsync_dir, write_replace
from claude_context.index.vectors.rows import ROW_DTYPE, SIDECAR_FILE, F16Rows, RowBacked, rows_name
from claude_context.index.vectors.slots import SlotMap, dedupe_last, found, top_k
from claude_context.index.vectors.vecutil import RWLock, as_rows, normalize

log = logging.getLogger(__name__)

_FORMAT = 2  # 1: live codes only, no re-rank rows (loads as unusable -> rebuilt from SQLite)
_CODES_FILE = "vectors.int8"


class Int8VectorIndex(RowBacked, VectorIndex):
    """Scalar-quantized (int8) rows scanned in full, best candidates re-ranked in fp16."""

    kind = "int8"

    #: Rows kept in float32 until this many have been added; the ranges are learned from them.
    train_size: int = 4096
    #: Rows per block of storage (fixed-size blocks: growth never copies old rows).
    block_rows: int = 8192
    #: Rows converted and scored per BLAS call (keep <= ~1k: see the module docstring).
    scan_rows: int = 1024
    #: Per-dimension range: min/max widened by ``margin`` of the range on each side.
    margin: float = 0.1
    #: Candidates re-ranked in fp16: ``max(min_candidates, oversample * k)``.
    oversample: float = 4.0
    min_candidates: int = 40
    #: ``save`` compacts (codes and row file) once dead slots pass this fraction and count.
    compact_fraction: float = 0.125
    compact_min: int = 1024
    #: Scans of at least this many rows use up to ``scan_threads`` threads.
    parallel_above: int = 65536
    scan_threads: int = max(1, min(4, os.cpu_count() or 1))

    def __init__(
        self, folder: Path, dim: int, *, train_size: int | None = None, oversample: float | None = None
    ) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.folder = Path(folder)
        self.dim = dim
        if train_size is not None:
            self.train_size = max(1, int(train_size))
        if oversample is not None:
            if oversample < 1:
                raise ValueError(f"oversample must be at least 1, got {oversample}")
            self.oversample = float(oversample)
        self._rw = RWLock()
        self._mutate = threading.Lock()
        self._closed = False
        self._generation: int | None = None
        self._reset()
        self._load()

    def _reset(self) -> None:
        self._blocks: list[np.ndarray] = []  # float32 rows until trained, then int8 codes
        self._slots = SlotMap()
        self._token = uuid.uuid4().hex[:12]
        self._rows = F16Rows(self.folder, self.dim, self.folder / rows_name(self._token))
        self._step: np.ndarray | None = None  # per-dimension step; None while untrained
        self._mid: np.ndarray | None = None
        self._clipped = 0  # components clipped on encode since the ranges were learned
        self._encoded = 0

    @property
    def trained(self) -> bool:
        return self._step is not None

    # ---------------------------------------------------------------- quantizer

    def _learn(self, x: np.ndarray) -> None:
        """Per-dimension ranges from ``x`` (float32 rows)."""
        lo, hi = x.min(axis=0), x.max(axis=0)
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

    def _train_now(self) -> None:
        """Learn the ranges from the float32 rows held so far and encode every block."""
        n = self._slots.n_slots
        live = ~self._slots.dead_mask()
        rows = np.concatenate(self._blocks)[:n] if self._blocks else np.zeros((0, self.dim), np.float32)
        self._learn(rows[live] if live.any() else rows)
        self._blocks = [self._encode(b) for b in self._blocks]

    # ---------------------------------------------------------------- mutation

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Insert or replace (a replaced id's old slot becomes a tombstone)."""
        vectors = as_rows(vectors, self.dim)
        uniq, rows = dedupe_last(ids, vectors.shape[0])
        if not len(uniq):
            return
        vecs = normalize(vectors[rows])
        with self._mutate:
            self._check_open()
            # Encode and write the fp16 rows outside the write lock: searches keep running, and
            # never read past the slots they know.
            payload = self._encode(vecs) if self.trained else vecs
            self._rows.append(vecs.astype(ROW_DTYPE))
            with self._rw.write():
                self._slots.kill(found(self._slots, uniq))
                self._append_codes(payload)
                self._slots.append(uniq)
                if not self.trained and self._slots.n_live >= self.train_size:
                    self._train_now()

    def _append_codes(
        self, rows: np.ndarray, blocks: list[np.ndarray] | None = None, n: int | None = None
    ) -> None:
        blocks = self._blocks if blocks is None else blocks
        dtype = np.int8 if self.trained else np.float32
        n = self._slots.n_slots if n is None else n  # rows already stored
        start = 0
        while start < len(rows):
            b, r = divmod(n, self.block_rows)
            take = min(len(rows) - start, self.block_rows - r)
            if b == len(blocks):
                blocks.append(np.zeros((0, self.dim), dtype))
            if r + take > len(blocks[b]):  # only the last block grows (doubling), the rest are full
                grown = np.zeros((min(self.block_rows, max(r + take, 2 * len(blocks[b]))), self.dim), dtype)
                grown[:r] = blocks[b][:r]
                blocks[b] = grown
            blocks[b][r : r + take] = rows[start : start + take]
            start += take
            n += take

    def delete(self, ids: Iterable[int]) -> None:
        arr = np.fromiter((int(i) for i in ids), dtype=np.int64)
        if not len(arr):
            return
        with self._mutate, self._rw.write():
            self._check_open()
            self._slots.kill(found(self._slots, arr))

    def _codes(self, slots: np.ndarray) -> np.ndarray:
        """Stored codes (or float32 rows while untrained) of the given slots, in that order."""
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
        """Best-first cosine (codes, then fp16 re-rank); ``allowed`` scores only those ids."""
        q = self._unit_query(query)
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
                slots = np.sort(found(self._slots, np.fromiter(allowed, dtype=np.int64, count=len(allowed))))
                if len(slots) * 4 < self._slots.n_slots:  # selective: score just those rows
                    scores = _score(self._codes(slots), qs, self.scan_rows) + offset
                    return self._best(q, scores, slots, k)
                mask = np.zeros(self._slots.n_slots, np.bool_)
                mask[slots] = True
            else:
                mask = ~self._slots.dead_mask()
            scores = self._scan(qs) + offset
            slots = np.flatnonzero(mask)
            return self._best(q, scores[slots], slots, k)

    def _best(self, q: np.ndarray, scores: np.ndarray, slots: np.ndarray, k: int) -> list[Hit]:
        """Top ``k`` of the candidates; once trained, the best few are re-scored in fp16."""
        if self.trained:
            want = max(self.min_candidates, math.ceil(self.oversample * k))
            scores, slots = top_k(scores.astype(np.float32), slots, want)
            scores = self._rows.take(slots) @ q
        ids = self._slots.ids_of(np.asarray(slots, dtype=np.int64))
        s, i = top_k(np.asarray(scores, dtype=np.float32), ids, k)
        return [Hit(int(a), float(b)) for a, b in zip(i.tolist(), s.tolist(), strict=True)]

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

    # ---------------------------------------------------------------- introspection

    def resident_bytes(self) -> int:
        """Code blocks + slot map + the two per-dimension vectors. The fp16 re-rank rows stay on
        disk (a few per query through the page cache, see ``rows.F16Rows``): not counted."""
        blocks = sum(b.nbytes for b in self._blocks)
        return int(blocks + self._slots.nbytes() + 2 * 4 * self.dim)

    def details(self) -> dict[str, Any]:
        """Extra facts for ``status``: whether the ranges are learned yet, and the clip rate."""
        mode = "int8 codes + fp16 re-rank" if self.trained else f"float32 until {self.train_size} vectors"
        return {
            "mode": mode,
            "clipped_fraction": round(self._clipped / self._encoded, 6) if self._encoded else 0.0,
            "tombstones": self._slots.n_dead,
            "oversample": self.oversample,
            "rerank_file_bytes": self._rows.n_file * self._rows.row_bytes,
        }

    # ---------------------------------------------------------------- persistence

    def save(self, generation: int) -> None:
        """Compact if due, append new fp16 rows to the row file, rewrite the codes file, then
        the sidecar (see the module docstring)."""
        with self._mutate:
            self._check_open()
            self.folder.mkdir(parents=True, exist_ok=True)
            if self._slots.n_dead > max(self.compact_min, self.compact_fraction * self._slots.n_slots):
                self._compact()
            self._persist_rows()
            with self._rw.read():  # searches continue; mutators are held off by _mutate
                n = self._slots.n_slots
                assert self._rows.n_file == n
                size, codes_crc = write_replace(self.folder / _CODES_FILE, writer=self._write_codes)
                meta = {
                    "format": _FORMAT,
                    "kind": self.kind,
                    "generation": int(generation),
                    "dim": self.dim,
                    "slots": n,
                    "live": self._slots.n_live,
                    "trained": self.trained,
                    "step": None if self._step is None else self._step.tolist(),
                    "mid": None if self._mid is None else self._mid.tolist(),
                    "clipped": self._clipped,
                    "encoded": self._encoded,
                    "token": self._token,
                    "rows_crc32": self._rows.crc,
                    "codes_bytes": size,
                    "codes_crc32": codes_crc,
                }
            fsync_dir(self.folder)
            atomic_write_json(self.folder / SIDECAR_FILE, meta)
            self._generation = int(generation)
            self._drop_stale_rows()

    def _write_codes(self, path: str) -> None:
        """Codes of every slot, then slot ids (int64) and dead flags (uint8)."""
        n = self._slots.n_slots
        with open(path, "wb") as f:
            for s in range(0, n, 65536):
                f.write(np.ascontiguousarray(self._codes(np.arange(s, min(s + 65536, n)))).tobytes())
            f.write(self._slots.all_ids().astype("<i8").tobytes())
            f.write(self._slots.all_dead().astype(np.uint8).tobytes())

    def _compact(self) -> None:
        """Live slots only: a new row file (new token) and new code blocks, swapped in at once.
        Called from ``save`` with ``_mutate`` held, so no row is added meanwhile."""
        keep = self._slots.live_slots()
        token = uuid.uuid4().hex[:12]
        path = self.folder / rows_name(token)
        crc = 0
        step = max(1, (16 << 20) // (self.dim * ROW_DTYPE.itemsize))

        def write_rows(tmp: str) -> None:
            nonlocal crc
            with open(tmp, "wb") as f:
                for lo in range(0, len(keep), step):
                    raw = self._rows.take(keep[lo : lo + step]).astype(ROW_DTYPE).tobytes()
                    crc = zlib.crc32(raw, crc)
                    f.write(raw)

        with self._rw.read():
            write_replace(path, writer=write_rows)
            blocks: list[np.ndarray] = []
            self._append_codes(self._codes(keep), blocks, 0)
            ids = self._slots.ids_of(keep)
        rows = F16Rows(self.folder, self.dim, path, len(keep), crc)
        with self._rw.write():
            old = self._rows
            self._rows, self._token, self._blocks = rows, token, blocks
            self._slots = SlotMap(ids)
            old.close()

    def _load(self) -> None:
        if not (self.folder / SIDECAR_FILE).exists():
            return
        try:
            meta = self._sidecar_meta(_FORMAT)
            n, trained = int(meta["slots"]), bool(meta["trained"])
            token = str(meta["token"])
            code_bytes = self.dim * (1 if trained else 4)
            codes_path = self.folder / _CODES_FILE
            size = codes_path.stat().st_size
            if size != meta.get("codes_bytes") or size != n * (code_bytes + 9):
                raise ValueError("codes file size does not match the sidecar (interrupted save?)")
            if crc32_of(codes_path) != meta.get("codes_crc32"):
                raise ValueError("codes file checksum mismatch")
            raw = np.fromfile(codes_path, dtype=np.uint8)
            codes = raw[: n * code_bytes].view(np.int8 if trained else np.float32).reshape(n, self.dim)
            ids = raw[n * code_bytes : n * (code_bytes + 8)].view("<i8").astype(np.int64)
            dead = raw[n * (code_bytes + 8) :].astype(np.bool_)
            live = ids[~dead]
            if len(np.unique(live)) != len(live) or (n and ids.min() < 0):
                raise ValueError("duplicate or negative ids")
            step = mid = None
            if trained:
                step = np.asarray(meta["step"], dtype=np.float32)
                mid = np.asarray(meta["mid"], dtype=np.float32)
                if step.shape != (self.dim,) or mid.shape != (self.dim,) or not (step > 0).all():
                    raise ValueError("bad quantizer ranges")
            generation = int(meta["generation"])
            rows = self._open_rows(token, n, int(meta["rows_crc32"]))
        except Exception as exc:  # corrupt, truncated, foreign or half-written: rebuild from SQLite
            log.warning("ignoring unusable vector index in %s (%s); starting empty", self.folder, exc)
            return
        self._rows.close()
        self._token, self._rows = token, rows
        self._step, self._mid = step, mid
        self._clipped, self._encoded = int(meta.get("clipped", 0)), int(meta.get("encoded", 0))
        self._append_codes(codes, self._blocks, 0)
        self._slots = SlotMap(ids, dead)
        self._generation = generation

    def close(self) -> None:
        with self._mutate, self._rw.write():
            if self._closed:
                return
            self._closed = True
            self._rows.close()
            self._blocks = []
            self._slots = SlotMap()


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    """One small pool shared by every int8 index in the process (scans are short)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="int8-scan")
        return _pool


def _score(rows: np.ndarray, qs: np.ndarray, step: int) -> np.ndarray:
    """``rows @ qs`` in float32, ``step`` rows at a time (bounded temporary memory)."""
    out = np.empty(len(rows), np.float32)
    for s in range(0, len(rows), step):
        np.dot(rows[s : s + step].astype(np.float32), qs, out=out[s : s + step])
    return out
