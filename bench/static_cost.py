#!/usr/bin/env python3
"""What the static table beside the complete index costs on one indexed codebase: the no-op
``index`` (which loads or encodes every chunk's static vector), the first search, warm search
p50/p95 (natural-language questions and class names) and the process's memory. Prints JSON.

usage: CLAUDE_CONTEXT_HOME=H python bench/static_cost.py ROOT [--queries 100]
  compare with CLAUDE_CONTEXT_STATIC_COMPLETE_WEIGHT=0 (the same without the static ranking)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import time

QUESTIONS = [
    "where is the attention mask expanded", "how are model weights loaded from a checkpoint",
    "rotary position embeddings", "beam search scoring", "tokenizer padding side",
    "convert a slow tokenizer to a fast one", "how does gradient checkpointing work",
    "where are generation configs validated", "quantization config for bitsandbytes",
    "image processor resize and normalize", "how is the cache for past key values updated",
    "pipeline for text classification", "save pretrained model to a folder",
    "how are logits processors applied", "audio feature extraction with mel filters",
]  # fmt: skip


def rss_mb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("--queries", type=int, default=100)
    a = ap.parse_args()
    from claude_context.config import load_config
    from claude_context.embedding.static import vectors_for
    from claude_context.engine import Engine
    from claude_context.searching import _seeks_files

    engine = Engine(load_config())
    out: dict = {"static_complete_weight": engine.config.static_complete_weight}
    t = time.perf_counter()
    report = engine.index(a.root)
    out["index_s"], out["chunks_embedded"] = round(time.perf_counter() - t, 2), report.chunks_embedded
    store = engine.resolve(a.root)[0].store
    names = [
        sc.chunk.symbol.split(".")[-1]
        for batch in store.meta.iter_chunks()
        for sc in batch
        if sc.chunk.kind == "class" and sc.chunk.symbol
    ]
    half = a.queries // 2
    queries = (QUESTIONS * (half // len(QUESTIONS) + 1))[:half]
    queries += random.Random(7).sample(names, min(a.queries - half, len(names)))
    out["rss_before_search_mb"] = rss_mb()
    t = time.perf_counter()
    engine.search(a.root, QUESTIONS[0])
    out["first_search_ms"] = round((time.perf_counter() - t) * 1000, 1)
    vectors = vectors_for(store, engine.config)
    t = time.perf_counter()
    if vectors is not None and not vectors.settle(120):
        sys.exit("the static vectors' graph was not built within 120 s")
    out["graph_wait_s"] = round(time.perf_counter() - t, 2)  # above EXACT_SCAN_MAX chunks: its build
    for q in queries[:10]:
        engine.search(a.root, q)
    lat = []
    for q in queries:
        t = time.perf_counter()
        engine.search(a.root, q)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    out |= {
        "chunks": store.meta.chunk_count(),
        "queries": len(lat),
        "file_seeking": sum(map(_seeks_files, queries)),
        "p50_ms": round(statistics.median(lat), 1),
        "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1),
        "rss_mb": rss_mb(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    engine.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
