"""The one place that names the index backends and picks their classes from per-codebase options
(txtai's ann/factory shape). Adding a vector backend: one file in ``vectors/`` and one line here."""

from __future__ import annotations

import importlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from claude_context.config import Quantization, StoreKind, choices
from claude_context.index.base import ChunkIndex


@dataclass(frozen=True, slots=True)
class IndexOptions:
    """Backend choices recorded per codebase; a change rebuilds derived data from SQLite."""

    store: StoreKind = "local"
    quantization: Quantization = "none"  # never ``auto``: that is resolved before this point
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


def resolve_quantization(requested: Quantization, n_vectors: int, store: StoreKind = "local") -> Quantization:
    """``auto`` -> a concrete index type for a codebase of ``n_vectors`` chunks.

    A Milvus store keeps int8 for large codebases (its IVF_RABITQ needs Milvus 2.6+)."""
    if requested != "auto":
        return requested
    if n_vectors < AUTO_QUANTIZE_ABOVE:
        return "none"
    return "int8" if store == "milvus" else "rabitq"


# The one place naming each backend: a quantization picks the local vector index, a store kind
# the chunk index. Classes are imported when first used (hnswlib, rabitqlib, pymilvus are heavy).
VECTOR_INDEXES = {
    "none": "claude_context.index.vectors.hnsw:HnswVectorIndex",
    "int8": "claude_context.index.vectors.int8:Int8VectorIndex",
    "rabitq": "claude_context.index.vectors.rabitq:RabitqVectorIndex",
}
STORES = {
    "local": "claude_context.index.local:LocalChunkIndex",
    "milvus": "claude_context.index.remote.milvus:MilvusChunkIndex",
}
assert set(VECTOR_INDEXES) | {"auto"} == set(choices(Quantization)), "config.Quantization and VECTOR_INDEXES"
assert set(STORES) == set(choices(StoreKind)), "config.StoreKind and STORES"


def _load(spec: str) -> type:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


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
    if options.store not in STORES:
        raise ValueError(f"unknown store {options.store!r}")
    if options.store == "milvus":
        # One collection per codebase; no URI = Milvus Lite in the codebase folder. Connects lazily.
        return _load(STORES["milvus"])(
            folder, dim, uri=options.milvus_uri, token=options.milvus_token, quantization=options.quantization
        )
    if options.quantization not in VECTOR_INDEXES:
        raise ValueError(f"unknown quantization {options.quantization!r}")
    vector_class = _load(VECTOR_INDEXES[options.quantization])
    vectors = vector_class(folder, dim) if options.quantization == "none" else vector_class(
        folder, dim, oversample=oversample
    )
    from claude_context.index.keyword.bm25 import TantivyKeywordIndex

    keywords = TantivyKeywordIndex(folder, expansion_weight=keyword_expansion, tokenizer=keyword_tokenizer)
    return _load(STORES["local"])(vectors, keywords)
