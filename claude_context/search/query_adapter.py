"""A linear query adapter: moves a question's vector toward the code it describes.

A general sentence model (all-MiniLM-L6-v2) embeds "Writes a usage line into the buffer." and
``def write_usage(self, prog, args="", prefix=None)`` in different regions of its space: it was
trained on sentence pairs, not on docs paired with code. A 384x384 affine map ``W q + b`` applied
to the *query* vector only, fitted offline on doc-comment / definition pairs of published packages
in five languages (``bench/train_adapter.py``), narrows that gap. Chunk vectors are untouched, so
the adapter never re-embeds anything and can be switched off per call (config ``query_adapter``).

The adapter belongs to one model: it is applied only when the index's model is the bundled
default; any other model gets its queries as they are. Measurements: bench/README.md.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from claude_context.embedding import is_bundled

_FILE = "query_adapter_minilm_l6.npz"  # in claude_context/data, fitted for the bundled model


@dataclass(frozen=True, slots=True)
class QueryAdapter:
    weight: np.ndarray  # (dim, dim)
    bias: np.ndarray  # (dim,)
    info: dict

    @property
    def dim(self) -> int:
        return int(self.bias.shape[0])

    def apply(self, vec: np.ndarray) -> np.ndarray:
        """``normalize(W v + b)`` as float32; a vector of another size is returned unchanged."""
        v = np.asarray(vec, dtype=np.float32)
        if v.shape != (self.dim,):
            return v
        out = self.weight @ v + self.bias
        norm = float(np.linalg.norm(out))
        return (out / norm).astype(np.float32) if norm > 0 else v


def load(path) -> QueryAdapter:
    """Read an adapter file (``W``, ``b`` and a JSON ``info`` string, as train_adapter.py writes)."""
    with np.load(path, allow_pickle=False) as z:
        weight = np.asarray(z["W"], dtype=np.float32)
        bias = np.asarray(z["b"], dtype=np.float32)
        info = json.loads(str(z["info"])) if "info" in z else {}
    if weight.ndim != 2 or weight.shape != (bias.shape[0], bias.shape[0]):
        raise ValueError(f"{path}: adapter shapes {weight.shape} / {bias.shape} do not match")
    return QueryAdapter(weight, bias, info)


def adapter_for(model_name: str) -> QueryAdapter | None:
    """The shipped adapter for ``model_name`` (the bundled default only), else None."""
    return _shipped() if is_bundled(model_name) else None


@functools.cache
def _shipped() -> QueryAdapter:
    ref = resources.files("claude_context") / "data" / _FILE
    with resources.as_file(ref) as path:
        return load(path)
