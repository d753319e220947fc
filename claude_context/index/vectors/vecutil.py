"""Small pieces every vector index shares: the readers-writer lock and row normalization."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np


class RWLock:
    """Writer-preferring readers-writer lock (searches share, mutations and resize exclude)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def normalize(x: np.ndarray) -> np.ndarray:
    """float32, C-contiguous, unit rows (zero rows stay zero) - cheap insurance for 'ip'."""
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def as_rows(vectors: np.ndarray, dim: int) -> np.ndarray:
    """``vectors`` as a 2-D array of ``dim``-wide rows (one vector may come 1-D); ValueError else."""
    vectors = np.asarray(vectors)
    if vectors.ndim == 1:
        vectors = vectors.reshape(1, -1)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {vectors.shape}")
    return vectors
