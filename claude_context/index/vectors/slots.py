"""Slot bookkeeping shared by the quantized vector indexes (int8, RaBitQ).

Quantized indexes store rows in append-only *slots* (a row number); a chunk id maps to at most
one live slot. A Python ``dict`` would cost ~100 bytes per id, more than a 1-bit RaBitQ code
(~70 bytes), so the map is kept in numpy arrays: ``slot -> id`` (int64), a ``dead`` flag per
slot, and ``id -> slot`` by binary search over an argsort of the ids (int32), plus a small
unsorted tail of recent slots that is merged into the sorted part in geometric steps.
About 13 bytes per slot in all.

An id re-added after a delete gets a new, higher slot; lookups return the highest slot holding
an id, so the live one wins over dead older copies.
"""

from __future__ import annotations

import numpy as np

_GROW = 1.25  # capacity growth of the slot arrays (bounded waste, amortized O(1) appends)


class SlotMap:
    """``slot -> id`` and ``id -> live slot`` for int64 ids, without a Python object per id."""

    def __init__(self, ids: np.ndarray | None = None, dead: np.ndarray | None = None) -> None:
        ids = np.zeros(0, np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        n = len(ids)
        self._ids = np.empty(max(n, 64), np.int64)
        self._ids[:n] = ids
        self._dead = np.zeros(max(n, 64), np.bool_)
        if dead is not None:
            self._dead[:n] = dead
        self._n = n
        self._live = n - int(self._dead[:n].sum())
        self._sorter = np.zeros(0, np.int32)  # argsort of _ids[:_n_sorted] (stable: equal ids by slot)
        self._n_sorted = 0
        self._tail_sorter: np.ndarray | None = None
        self._merge()

    # ------------------------------------------------------------------ sizes

    @property
    def n_slots(self) -> int:
        return self._n

    @property
    def n_live(self) -> int:
        return self._live

    @property
    def n_dead(self) -> int:
        return self._n - self._live

    def nbytes(self) -> int:
        return int(self._ids.nbytes + self._dead.nbytes + self._sorter.nbytes)

    # ------------------------------------------------------------------ updates

    def append(self, ids: np.ndarray) -> np.ndarray:
        """New live slots for ``ids`` (the caller kills any older live slot of these ids first)."""
        ids = np.asarray(ids, dtype=np.int64)
        m = len(ids)
        if self._n + m > len(self._ids):
            cap = max(self._n + m, int(len(self._ids) * _GROW) + 64)
            self._ids = np.resize(self._ids, cap)
            dead = np.zeros(cap, np.bool_)
            dead[: self._n] = self._dead[: self._n]
            self._dead = dead
        slots = np.arange(self._n, self._n + m, dtype=np.int64)
        self._ids[self._n : self._n + m] = ids
        self._dead[self._n : self._n + m] = False
        self._n += m
        self._live += m
        self._tail_sorter = None
        if self._n - self._n_sorted > max(4096, self._n_sorted // 8):
            self._merge()
        return slots

    def kill(self, slots: np.ndarray) -> int:
        """Mark slots dead; returns how many were live."""
        slots = np.asarray(slots, dtype=np.int64)
        if not len(slots):
            return 0
        slots = np.unique(slots)
        was_live = int((~self._dead[slots]).sum())
        self._dead[slots] = True
        self._live -= was_live
        return was_live

    def _merge(self) -> None:
        self._sorter = np.argsort(self._ids[: self._n], kind="stable").astype(np.int32)
        self._n_sorted = self._n
        self._tail_sorter = None

    # ------------------------------------------------------------------ lookups

    def find(self, ids: np.ndarray) -> np.ndarray:
        """Live slot of each id, -1 where the id is absent or deleted."""
        q = np.asarray(ids, dtype=np.int64)
        out = np.full(len(q), -1, np.int64)
        if not len(q) or not self._n:
            return out
        if self._n_sorted:
            out = self._search(self._ids[: self._n_sorted], self._sorter, q, 0)
        if self._n > self._n_sorted:
            if self._tail_sorter is None:
                self._tail_sorter = np.argsort(self._ids[self._n_sorted : self._n], kind="stable")
            tail = self._search(self._ids[self._n_sorted : self._n], self._tail_sorter, q, self._n_sorted)
            out = np.where(tail >= 0, tail, out)  # tail slots are newer
        hit = out >= 0
        out[hit] = np.where(self._dead[out[hit]], -1, out[hit])
        return out

    @staticmethod
    def _search(values: np.ndarray, sorter: np.ndarray, q: np.ndarray, base: int) -> np.ndarray:
        """Highest position holding each query id in ``values`` (+ base), or -1."""
        pos = np.searchsorted(values, q, side="right", sorter=sorter) - 1
        ok = pos >= 0
        slots = np.full(len(q), -1, np.int64)
        cand = sorter[pos[ok]].astype(np.int64)
        match = values[cand] == q[ok]
        idx = np.flatnonzero(ok)[match]
        slots[idx] = cand[match] + base
        return slots

    def ids_of(self, slots: np.ndarray) -> np.ndarray:
        return self._ids[np.asarray(slots, dtype=np.int64)]

    def is_live(self, slots: np.ndarray) -> np.ndarray:
        return ~self._dead[np.asarray(slots, dtype=np.int64)]

    def dead_mask(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        return self._dead[lo : self._n if hi is None else hi]

    def live_slots(self) -> np.ndarray:
        return np.flatnonzero(~self._dead[: self._n]).astype(np.int64)

    def live_ids(self) -> set[int]:
        return set(self._ids[: self._n][~self._dead[: self._n]].tolist())

    def all_ids(self) -> np.ndarray:
        """Copy of ``slot -> id`` for every slot (dead ones included)."""
        return self._ids[: self._n].copy()

    def all_dead(self) -> np.ndarray:
        return self._dead[: self._n].copy()


def dedupe_last(ids: object, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(unique ids, row of each id's last occurrence): the last duplicate in one call wins."""
    arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64).reshape(-1)
    if len(arr) != n_rows:
        raise ValueError(f"{len(arr)} ids for {n_rows} vectors")
    if len(arr) and arr.min() < 0:
        raise ValueError(f"ids must be non-negative, got {int(arr.min())}")
    rev = arr[::-1]
    uniq, first_in_rev = np.unique(rev, return_index=True)
    rows = (len(arr) - 1 - first_in_rev).astype(np.int64)
    order = np.argsort(rows, kind="stable")  # keep the caller's order (slots follow it)
    return uniq[order], rows[order]


def top_k(scores: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` (score desc, then key asc for determinism) of parallel arrays."""
    k = min(k, len(scores))
    if k <= 0:
        return scores[:0], keys[:0]
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
        scores, keys = scores[part], keys[part]
    order = np.lexsort((keys, -scores))
    return scores[order], keys[order]


#: Rows per BLAS matrix-vector call. OpenBLAS goes multi-threaded past ~2k rows, which on a busy
#: 2-core machine made a 2k x 384 product take ~7 ms instead of ~0.2 ms: keep calls small.
MATVEC_ROWS = 1024


def matvec(rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``rows @ q`` as float32, in slices of ``MATVEC_ROWS`` rows (see above)."""
    out = np.empty(len(rows), np.float32)
    for lo in range(0, len(rows), MATVEC_ROWS):
        np.dot(rows[lo : lo + MATVEC_ROWS], q, out=out[lo : lo + MATVEC_ROWS])
    return out


def found(slots: SlotMap, ids: np.ndarray) -> np.ndarray:
    """Live slots of those ids that are present (absent and deleted ids dropped)."""
    s = slots.find(ids)
    return s[s >= 0]
