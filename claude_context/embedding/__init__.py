"""Embeddings: the model (``model.py``: backends, ONNX exports, ``Embedder``) and the shared cache
of its vectors (``cache.py``: ``EmbeddingCache``)."""

from claude_context.embedding.cache import EmbeddingCache
from claude_context.embedding.model import (
    Embedder,
    available_cores,
    cpu_quant_arch,
    export_dir,
    is_bundled,
    parse_model_id,
    read_manifest,
    resolve_backend,
)
from claude_context.errors import EmbeddingError

__all__ = [
    "Embedder",
    "EmbeddingCache",
    "EmbeddingError",
    "available_cores",
    "cpu_quant_arch",
    "export_dir",
    "is_bundled",
    "parse_model_id",
    "read_manifest",
    "resolve_backend",
]
