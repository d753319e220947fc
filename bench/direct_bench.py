#!/usr/bin/env python3
"""The ONNX export run directly (``embedding/onnx_direct.py``) against sentence-transformers
running the same export: load time, embedding throughput and the largest vector difference,
on the chunk texts of an existing index.

usage: python bench/direct_bench.py INDEX_SQLITE [--models DIR] [--rounds 3] [--limit 3000]
       [--threads 2]
(INDEX_SQLITE: ``<home>/codebases/<name>/index.sqlite``; DIR: a model cache holding the export.)
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path

import numpy as np

from claude_context.config import load_config
from claude_context.embedding import model as emb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db", type=Path)
    ap.add_argument("--models", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    con = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
    texts = [r[0] for r in con.execute("SELECT content FROM chunks LIMIT ?", (a.limit,))]
    models = a.models or load_config().model_cache_dir
    e = emb.Embedder(models_dir=models, threads=a.threads)
    t = time.perf_counter()
    direct = e._direct(build=True)
    load_direct = time.perf_counter() - t
    if direct is None:
        raise SystemExit("this model's export cannot be run directly (see the log)")
    source = emb.resolve_model(e.model_name)[0]
    folder, file_name = emb.find_export(models, e.model_name, source, e.backend, e.arch)
    t = time.perf_counter()
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(
        str(folder), backend="onnx", device="cpu", model_kwargs=emb._ort_kwargs(a.threads, file_name)
    )
    out: dict = {
        "texts": len(texts),
        "model_id": e.model_id,
        "load_direct_s": round(load_direct, 2),
        "load_sentence_transformers_s": round(time.perf_counter() - t, 2),
        "rounds": [],
    }
    for _ in range(a.rounds):  # alternate, so machine load hits both alike
        t = time.perf_counter()
        b = direct.encode(texts, e.batch_size)
        td = time.perf_counter() - t
        t = time.perf_counter()
        ref = st.encode(texts, batch_size=e.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        ts = time.perf_counter() - t
        out["rounds"].append(
            {
                "direct_chunks_s": round(len(texts) / td, 1),
                "sentence_transformers_chunks_s": round(len(texts) / ts, 1),
                "max_abs_diff": float(np.abs(ref - b).max()),
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
