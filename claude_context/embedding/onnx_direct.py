"""Vectors from an existing ONNX export, without importing sentence-transformers.

Why: sentence-transformers (with transformers, torch and optimum) takes 4-6 s to import and
~400 MB of memory, the bulk of a one-shot ``claude-context search`` and of every MCP server
process, while the export it made once holds all inference needs: its tokenizer
(``tokenizer.json``) and its ONNX graph. This runs them with the ``tokenizers`` library and ONNX
Runtime (both sentence-transformers' own dependencies: ~0.25 s to import and load), then the
export's mean pooling and L2 normalisation, batching as sentence-transformers does (texts sorted
by length, longest first, padded to the longest of each batch), so the vectors are its own
(``tests/test_embedding.py`` compares them). An export with another module chain, pooling mode or
a prompt is left to sentence-transformers, which also builds the export in the first place.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_CHAIN = ("Transformer", "Pooling", "Normalize")


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _mean_pooling(folder: Path, modules: list[dict]) -> bool:
    cfg = _json(folder / modules[1].get("path", "") / "config.json")
    if "pooling_mode" in cfg:  # sentence-transformers 5
        return cfg["pooling_mode"] == "mean"
    modes = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
    return modes == ["pooling_mode_mean_tokens"]


def _max_length(folder: Path) -> int:
    for value in (
        _json(folder / "sentence_bert_config.json").get("max_seq_length"),
        _json(folder / "tokenizer_config.json").get("model_max_length"),
    ):
        if isinstance(value, int) and 0 < value < 100_000:
            return value
    return 512


class OnnxEncoder:
    """One export's inference. Raises ValueError for an export it cannot reproduce exactly."""

    def __init__(self, folder: Path, file_name: str, session: dict) -> None:
        """``session``: ONNX Runtime ``session_options`` and ``provider``, as the export runs with."""
        modules = json.loads((folder / "modules.json").read_text())
        kinds = tuple(str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules)
        if kinds != _CHAIN or not _mean_pooling(folder, modules):
            raise ValueError(f"module chain {kinds} is not Transformer + mean Pooling + Normalize")
        st = _json(folder / "config_sentence_transformers.json")
        if st.get("default_prompt_name") or any(st.get("prompts", {}).values()):
            raise ValueError("the model adds prompts")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # our thread budget, as before
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        pad = _json(folder / "special_tokens_map.json").get("pad_token", "[PAD]")
        pad = pad.get("content", "[PAD]") if isinstance(pad, dict) else pad
        pad_id = self.tokenizer.token_to_id(pad)
        if pad_id is None:
            raise ValueError(f"no pad token {pad!r} in the vocabulary")
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad)  # to the longest of a batch
        self.tokenizer.enable_truncation(_max_length(folder))
        self.session = ort.InferenceSession(
            str(folder / file_name), session["session_options"], providers=[session["provider"]]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= self.inputs:
            raise ValueError(f"unexpected ONNX inputs {sorted(self.inputs)}")
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        # A batch of 32 long chunks grows ONNX Runtime's memory arena by ~0.5 GB; the last run of
        # each call hands what it no longer uses back, so a server does not keep its peak.
        self._release = ort.RunOptions()
        self._release.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def _run(self, texts: list[str], release: bool = False) -> np.ndarray:
        encs = self.tokenizer.encode_batch(texts)
        mask = np.asarray([e.attention_mask for e in encs], dtype=np.int64)
        feed = {"input_ids": np.asarray([e.ids for e in encs], dtype=np.int64), "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.asarray([e.type_ids for e in encs], dtype=np.int64)
        tokens = self.session.run(None, feed, self._release if release else None)[0]  # (batch, seq, dim)
        tokens = tokens.astype(np.float32, copy=False)
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Normalized float32 vectors, shape (len(texts), dim), in the order given."""
        order = np.argsort([-len(t) for t in texts])  # sentence-transformers' order and batches
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), batch_size):
            idx = order[i : i + batch_size]
            last = i + batch_size >= len(texts)  # a query (one text) grows it little: not worth 0.4 ms
            out[idx] = self._run([texts[j] for j in idx], release=last and len(texts) > 1)
        return out


def load(folder: Path, file_name: str, session: dict) -> OnnxEncoder | None:
    """The encoder, or None (said in the log) when this export needs sentence-transformers."""
    try:
        return OnnxEncoder(folder, file_name, session)
    except Exception as exc:  # any surprise: the reference path answers instead
        log.info("embedding via sentence-transformers for %s (%s)", folder.name, exc)
        return None
