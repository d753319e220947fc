"""The static table run without importing model2vec.

model2vec builds the table (distillation, once per machine), but importing it to encode pulls in
joblib, requests and its model-card code: ~0.17 s of every one-shot ``claude-context search``
(0.66 s in all, 2 cores) and of every server start, to look up rows of one matrix. A table is a
``model.safetensors`` (``embeddings``, and for a quantized vocabulary ``weights`` / ``mapping``), a
``tokenizer.json`` and a ``config.json``; encoding is what ``StaticModel.encode`` does (see
``encode``), with the same two libraries underneath (tokenizers, numpy), so the vectors are the
same to the bit (``tests/test_static.py``). Anything else in the folder goes through model2vec.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class StaticEncoder:
    """A model2vec table's ``encode`` (mean of the tokens' rows, normalized if configured)."""

    def __init__(self, folder: Path) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") != "model2vec" or config.get("pooling", "mean") != "mean":
            raise ValueError(f"not a mean-pooled model2vec table: {folder}")
        with safe_open(str(folder / "model.safetensors"), framework="numpy") as f:
            keys = set(f.keys())
            if not keys <= {"embeddings", "weights", "mapping"} or "embeddings" not in keys:
                raise ValueError(f"unknown tensors in {folder}: {sorted(keys)}")
            self.embedding = f.get_tensor("embeddings")
            self.weights = f.get_tensor("weights") if "weights" in keys else None
            self.mapping = f.get_tensor("mapping") if "mapping" in keys else None
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        vocab = self.tokenizer.get_vocab()
        if self.mapping is None and len(self.embedding) != len(vocab):
            raise ValueError(f"{len(vocab)} tokens but {len(self.embedding)} rows in {folder}")
        unk = getattr(self.tokenizer.model, "unk_token", None)
        self.unk_id = vocab[unk] if unk is not None else None
        self.median_token_length = int(np.median([len(token) for token in vocab]))
        self.normalize = bool(config.get("normalize", False))
        self.dim = int(self.embedding.shape[1])

    def encode(self, texts: Sequence[str], max_length: int | None, batch_size: int = 1024) -> np.ndarray:
        """``StaticModel.encode(texts, max_length, batch_size, use_multiprocessing=False)``:
        texts cut to ``max_length`` x the median token length in characters, tokenized without
        special tokens, the unknown token dropped, ``max_length`` tokens kept; per batch the mean
        of their rows (times their weights), normalized when the table says so."""
        out = [self._batch(texts[i : i + batch_size], max_length) for i in range(0, len(texts), batch_size)]
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.dim), dtype=self.embedding.dtype)

    def _batch(self, texts: Sequence[str], max_length: int | None) -> np.ndarray:
        if max_length is not None:
            m = max_length * self.median_token_length
            texts = [text[:m] for text in texts]
        # encode_batch_fast: tokenizers >= 0.21 (no offsets), as model2vec picks it
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        encodings = encode(list(texts), add_special_tokens=False)
        rows: list[np.ndarray] = []
        for encoding in encodings:
            ids = encoding.ids
            if self.unk_id is not None:
                ids = [i for i in ids if i != self.unk_id]
            if max_length is not None:
                ids = ids[:max_length]
            if not ids:
                rows.append(np.zeros(self.dim))
                continue
            emb = self.embedding[ids if self.mapping is None else self.mapping[ids]]
            if self.weights is not None:
                emb = emb * self.weights[ids][:, None]
            rows.append(emb.mean(axis=0))
        array = np.stack(rows)
        if self.normalize:
            array = array / (np.linalg.norm(array, axis=1, keepdims=True) + 1e-32)
        return array
