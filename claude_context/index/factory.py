"""The one place that picks index classes from per-codebase options (txtai's ann/factory shape)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from claude_context.index.base import ChunkIndex


@dataclass(frozen=True, slots=True)
class IndexOptions:
    """Backend choices recorded per codebase; a change rebuilds derived data from SQLite."""

    store: str = "local"  # local | milvus
    quantization: str = "none"  # none | int8 | rabitq (``auto`` is resolved before this point)
    milvus_uri: str = ""
    milvus_token: str = ""

    def to_dict(self) -> dict[str, str]:
        d = asdict(self)
        d.pop("milvus_token")  # never persisted: it is a secret
        return d


# Below this many vectors full precision costs little memory and is exact enough; above it the
# quantized index pays off. Revisit with bench/quant_bench.py figures.
AUTO_QUANTIZE_ABOVE = 200_000


def resolve_quantization(requested: str, n_vectors: int) -> str:
    """``auto`` -> a concrete index type for a codebase of ``n_vectors`` chunks."""
    if requested != "auto":
        return requested
    return "none" if n_vectors < AUTO_QUANTIZE_ABOVE else "int8"


def open_chunk_index(folder: Path, dim: int, options: IndexOptions) -> ChunkIndex:
    from claude_context.index.bm25 import TantivyKeywordIndex
    from claude_context.index.local import LocalChunkIndex

    if options.store != "local":
        raise ValueError(f"unknown store {options.store!r}")
    if options.quantization == "none":
        from claude_context.index.hnsw import HnswVectorIndex

        vectors = HnswVectorIndex(folder, dim)
    else:
        raise ValueError(f"unknown quantization {options.quantization!r}")
    return LocalChunkIndex(vectors, TantivyKeywordIndex(folder))
