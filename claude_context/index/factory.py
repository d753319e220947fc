"""The one place that picks index classes from per-codebase options (txtai's ann/factory shape)."""

from __future__ import annotations

import os
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "milvus_uri", normalize_milvus_uri(self.milvus_uri))

    def to_dict(self) -> dict[str, str]:
        d = asdict(self)
        d.pop("milvus_token")  # never persisted: it is a secret
        return d


def normalize_milvus_uri(uri: str) -> str:
    """A Milvus Lite file (a path ending in ``.db``) as an absolute path, so the recorded option
    means the same file from any working directory; server URIs are kept as given."""
    uri = (uri or "").strip()
    if uri.endswith(".db") and "://" not in uri:
        return str(Path(os.path.expanduser(uri)).resolve())
    return uri


# ``auto``: full precision (hnswlib) below this many vectors, RaBitQ from here on. Measured with
# bench/quant_bench.py (MiniLM 384-d, 2 shared cores): hnswlib holds ~2 KB a vector (195 MB RSS
# at 100k) and took ~115 s to build 100k; RaBitQ holds ~86 bytes a vector (16 MB at 100k), built
# 100k in ~6 s, answers in < 1 ms, and matched full precision on the eval sets (chunk hit@10).
# At 50k hnswlib already costs ~100 MB per codebase - twenty such repositories would need 2 GB -
# while below it the graph is cheap and RaBitQ would scan exactly anyway (it starts its IVF at
# 10k vectors). int8 (4x smaller than fp32, near-exact recall) scans every code per query, so it
# is slower than RaBitQ past ~100k vectors: it stays an explicit choice.
AUTO_QUANTIZE_ABOVE = 50_000


def resolve_quantization(requested: str, n_vectors: int, store: str = "local") -> str:
    """``auto`` -> a concrete index type for a codebase of ``n_vectors`` chunks.

    A Milvus store keeps int8 for large codebases (its IVF_RABITQ needs Milvus 2.6+)."""
    if requested != "auto":
        return requested
    if n_vectors < AUTO_QUANTIZE_ABOVE:
        return "none"
    return "int8" if store == "milvus" else "rabitq"


def open_chunk_index(
    folder: Path,
    dim: int,
    options: IndexOptions,
    *,
    keyword_expansion: float = 0.0,
    keyword_tokenizer: str = "code",
    oversample: float | None = None,
) -> ChunkIndex:
    """``oversample``: quantized indexes re-rank ``oversample * k`` candidates (None: their
    measured defaults); a search-time setting, so changing it rebuilds nothing."""
    if options.store == "milvus":
        # One collection per codebase; no URI = Milvus Lite in the codebase folder. Connects lazily.
        from claude_context.index.milvus import MilvusChunkIndex

        return MilvusChunkIndex(
            folder,
            dim,
            uri=options.milvus_uri,
            token=options.milvus_token,
            quantization=options.quantization,
        )

    from claude_context.index.bm25 import TantivyKeywordIndex
    from claude_context.index.local import LocalChunkIndex

    if options.store != "local":
        raise ValueError(f"unknown store {options.store!r}")
    if options.quantization == "none":
        from claude_context.index.hnsw import HnswVectorIndex

        vectors = HnswVectorIndex(folder, dim)
    elif options.quantization == "int8":
        from claude_context.index.int8 import Int8VectorIndex

        vectors = Int8VectorIndex(folder, dim, oversample=oversample)
    elif options.quantization == "rabitq":
        from claude_context.index.rabitq import RabitqVectorIndex

        vectors = RabitqVectorIndex(folder, dim, oversample=oversample)
    else:
        raise ValueError(f"unknown quantization {options.quantization!r}")
    return LocalChunkIndex(
        vectors, TantivyKeywordIndex(folder, expansion_weight=keyword_expansion, tokenizer=keyword_tokenizer)
    )
