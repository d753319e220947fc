"""Query vectors from an existing ONNX export, without importing sentence-transformers.

Why: importing sentence-transformers (with transformers, torch and optimum) takes 4-6 s, most of a
one-shot ``claude-context search`` and of a server's first search, while one query needs only
what the export already holds: its tokenizer (``tokenizer.json``) and its ONNX graph. This runs
them with the ``tokenizers`` library and ONNX Runtime (both sentence-transformers' own
dependencies, ~0.25 s to import and load), then the export's pooling (mean) and normalisation,
so the vector is sentence-transformers' own (``tests/test_embedding.py`` compares them).
An export with any other module chain, a prompt, or pooling mode is left to sentence-transformers,
as are documents (its length-sorted batching is the reference path for indexing).
"""

from __future__ import annotations

import json
import logging
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


class QueryEncoder:
    """One export's query path. Raises ValueError for an export it cannot reproduce exactly."""

    def __init__(self, folder: Path, file_name: str, session: dict) -> None:
        """``session``: ONNX Runtime ``session_options`` and ``provider``, as the export runs with."""
        modules = json.loads((folder / "modules.json").read_text())
        kinds = tuple(str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules)
        if kinds != _CHAIN or not _mean_pooling(folder, modules):
            raise ValueError(f"module chain {kinds} is not Transformer + mean Pooling + Normalize")
        st = _json(folder / "config_sentence_transformers.json")
        if st.get("default_prompt_name") or any(st.get("prompts", {}).values()):
            raise ValueError("the model adds prompts")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(_max_length(folder))
        self.session = ort.InferenceSession(
            str(folder / file_name), session["session_options"], providers=[session["provider"]]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= self.inputs:
            raise ValueError(f"unexpected ONNX inputs {sorted(self.inputs)}")

    def encode(self, text: str) -> np.ndarray:
        """The normalized float32 vector of one text."""
        enc = self.tokenizer.encode(text)
        feed = {
            "input_ids": np.asarray([enc.ids], dtype=np.int64),
            "attention_mask": np.asarray([enc.attention_mask], dtype=np.int64),
        }
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.asarray([enc.type_ids], dtype=np.int64)
        tokens = self.session.run(None, feed)[0][0].astype(np.float32)  # (seq, dim)
        mask = feed["attention_mask"][0].astype(np.float32)[:, None]
        pooled = (tokens * mask).sum(axis=0) / max(float(mask.sum()), 1e-9)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)


def load(folder: Path, file_name: str, session: dict) -> QueryEncoder | None:
    """The encoder, or None (said in the log) when this export needs sentence-transformers."""
    try:
        return QueryEncoder(folder, file_name, session)
    except Exception as exc:  # any surprise: the reference path answers instead
        log.info("query vectors via sentence-transformers for %s (%s)", folder.name, exc)
        return None
