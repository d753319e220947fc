#!/usr/bin/env python3
"""Quantized vector index benchmark: hnswlib fp32 vs int8 vs RaBitQ against exact fp32 search.

Data: real MiniLM embeddings of the ``transformers`` corpus from an embedding cache
(``embeddings.sqlite``, read-only). ``--sizes 100000`` uses the real vectors, topped up with
noise-perturbed copies if the cache holds fewer (reported as ``real_vectors``); larger sizes are
copies of that set with small Gaussian noise (``--noise`` per dimension), re-normalized.
Queries are real vectors held out of every base set. Ground truth: exact fp32 inner products.

For each index type and size it reports recall@10, p50/p95 query ms (one query at a time, one
thread), build seconds (adds in batches of ``--batch``, as a store sync does, including any
re-clustering), ``resident_bytes()``, and, measured in a fresh process, the RSS the index adds
when loaded from disk and after the queries (for RaBitQ that includes the re-rank file pages the
queries touched, which the OS may evict). ``--sweep`` adds RaBitQ recall/latency per
oversample factor and probe fraction (how the defaults were chosen).

usage: python bench/quant_bench.py --json [--sizes 100000,1000000] [--types none,int8,rabitq]
           [--cache PATH] [--queries 200] [--noise 0.025] [--sweep] [--out FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_CACHE = (
    Path(os.environ.get("CLAUDE_CONTEXT_HOME", "~/.claude-context")).expanduser() / "embeddings.sqlite"
)
K = 10


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_real(cache: Path, limit: int) -> np.ndarray:
    con = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    rows = con.execute("SELECT vector FROM embeddings ORDER BY key LIMIT ?", (limit,)).fetchall()
    con.close()
    x = np.stack([np.frombuffer(r[0], dtype=np.float32) for r in rows]).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def noisy(x: np.ndarray, copies: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``copies`` noisy, re-normalized copies of every row (copy-major), built in slices."""
    out = np.empty((len(x) * copies, x.shape[1]), np.float32)
    for c in range(copies):
        part = out[c * len(x) : (c + 1) * len(x)]
        part[:] = x + sigma * rng.standard_normal(x.shape, dtype=np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
    return out


def ground_truth(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for lo in range(0, len(base), 65536):
        s = queries @ base[lo : lo + 65536].T
        cat_s = np.concatenate([best_s, s], axis=1)
        cat_i = np.concatenate(
            [best_i, np.arange(lo, lo + s.shape[1])[None, :].repeat(len(queries), 0)], axis=1
        )
        top = np.argpartition(-cat_s, k - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(cat_s, top, 1)
        best_i = np.take_along_axis(cat_i, top, 1)
    return best_i + 1  # ids are row + 1


def make_index(kind: str, folder: Path, dim: int):
    if kind == "none":
        from claude_context.index.vectors.hnsw import HnswVectorIndex

        return HnswVectorIndex(folder, dim)
    if kind == "int8":
        from claude_context.index.vectors.int8 import Int8VectorIndex

        return Int8VectorIndex(folder, dim)
    from claude_context.index.vectors.rabitq import RabitqVectorIndex

    return RabitqVectorIndex(folder, dim, background=False)


def measure(ix, queries: np.ndarray, gt: np.ndarray) -> dict:
    for q in queries[:20]:
        ix.search(q, K)
    lat, rec = [], []
    for q, truth in zip(queries, gt, strict=True):
        t = time.perf_counter()
        hits = ix.search(q, K)
        lat.append((time.perf_counter() - t) * 1000)
        rec.append(len({h.id for h in hits} & set(truth.tolist())) / K)
    lat.sort()
    return {
        "recall_at_10": round(float(np.mean(rec)), 4),
        "p50_ms": round(statistics.median(lat), 3),
        "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 3),
    }


_RSS_PROBE = r"""
import json, sys, numpy as np
sys.path.insert(0, sys.argv[4])
def rss():
    out = {}
    for line in open("/proc/self/status"):
        key, _, val = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(val.split()[0]) * 1024
    return out
from bench.quant_bench import make_index
import claude_context.index.vectors.hnsw, claude_context.index.vectors.int8  # noqa
import claude_context.index.vectors.rabitq, rabitqlib  # noqa
queries = np.load(sys.argv[3])
ix = make_index(sys.argv[1], __import__("pathlib").Path(sys.argv[2] + "-warmup"), queries.shape[1])
ix.add([1], queries[:1]); ix.search(queries[0], 10); ix.close()  # lazy imports/allocations first
r0 = rss()
ix = make_index(sys.argv[1], __import__("pathlib").Path(sys.argv[2]), queries.shape[1])
r1 = rss()
for q in queries:
    ix.search(q, 10)
r2 = rss()
print(json.dumps({
    "count": ix.count(),
    "rss_load_bytes": r1["VmRSS"] - r0["VmRSS"],
    "rss_after_queries_bytes": r2["VmRSS"] - r0["VmRSS"],
    "rss_after_queries_anon_bytes": r2["RssAnon"] - r0["RssAnon"],
    "rss_after_queries_file_bytes": r2["RssFile"] - r0["RssFile"],
}))
"""


def rss_in_fresh_process(kind: str, folder: Path, queries_file: Path) -> dict:
    root = str(Path(__file__).resolve().parents[1])
    shutil.rmtree(f"{folder}-warmup", ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, kind, str(folder), str(queries_file), root],
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(f"{folder}-warmup", ignore_errors=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sweep_rabitq(ix, queries: np.ndarray, gt: np.ndarray) -> list[dict]:
    rows = []
    base_os, base_pf, base_min = ix.oversample, ix.probe_fraction, ix.min_candidates
    try:
        for pf in (0.05, 0.1, 0.2):
            for os_ in (2, 4, 8, 16):
                ix.probe_fraction, ix.oversample, ix.min_candidates = pf, os_, 0
                m = measure(ix, queries, gt)
                rows.append({"probe_fraction": pf, "nprobe": ix.nprobe(), "oversample": os_, **m})
                log(f"  sweep {rows[-1]}")
    finally:
        ix.oversample, ix.probe_fraction, ix.min_candidates = base_os, base_pf, base_min
    return rows


def run_size(n: int, pool: np.ndarray, queries: np.ndarray, a: argparse.Namespace, work: Path) -> dict:
    rng = np.random.default_rng(n)
    # Past the base set: noisy copies of it, re-normalized.
    base = pool[:n] if n <= len(pool) else noisy(pool, -(-n // len(pool)), a.noise, rng)[:n]
    log(f"size {n}: ground truth")
    gt = ground_truth(base, queries, K)
    qfile = work / "queries.npy"
    np.save(qfile, queries)
    result: dict = {"vectors": n, "fp32_bytes": n * base.shape[1] * 4, "types": {}}
    for kind in a.types:
        folder = work / f"{kind}-{n}"
        shutil.rmtree(folder, ignore_errors=True)
        ix = make_index(kind, folder, base.shape[1])
        log(f"size {n}: building {kind}")
        t = time.perf_counter()
        for lo in range(0, n, a.batch):
            ix.add(range(lo + 1, min(n, lo + a.batch) + 1), base[lo : lo + a.batch])
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        ix.save(1)
        save_s = time.perf_counter() - t
        m = measure(ix, queries, gt)
        entry = {
            "kind": ix.kind,
            **m,
            "build_s": round(build_s, 1),
            "save_s": round(save_s, 1),
            "resident_bytes": ix.resident_bytes(),
            "resident_fraction_of_fp32": round(ix.resident_bytes() / result["fp32_bytes"], 4),
            "disk_bytes": sum(p.stat().st_size for p in folder.iterdir() if p.is_file()),
        }
        if hasattr(ix, "details"):
            entry["details"] = ix.details()
        if kind == "rabitq" and a.sweep:
            entry["sweep"] = sweep_rabitq(ix, queries, gt)
        log(f"size {n}: {kind} {entry}")
        ix.close()
        del ix
        gc.collect()
        if not a.no_rss:
            entry.update(rss_in_fresh_process(kind, folder, qfile))
            log(f"size {n}: {kind} rss {entry.get('rss_load_bytes')}")
        result["types"][kind] = entry
        if not a.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print JSON only on stdout (progress on stderr)")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--types", default="none,int8,rabitq")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--noise", type=float, default=0.025, help="per-dimension sigma of the copies")
    ap.add_argument("--batch", type=int, default=50_000, help="vectors per add() call")
    ap.add_argument("--sweep", action="store_true", help="RaBitQ oversample/nprobe sweep")
    ap.add_argument("--no-rss", action="store_true", help="skip the fresh-process RSS measurement")
    ap.add_argument("--keep", action="store_true", help="keep the index folders")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    a = ap.parse_args()
    a.types = [t.strip() for t in a.types.split(",") if t.strip()]
    sizes = [int(s) for s in a.sizes.split(",")]

    real = load_real(a.cache, max(sizes[0], 100_000) + a.queries)
    if len(real) <= a.queries:
        sys.exit(f"{a.cache}: only {len(real)} vectors")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(real))
    queries, pool = real[order[: a.queries]], real[order[a.queries :]]
    base_n = min(sizes[0], 100_000)
    if len(pool) < base_n:  # top up with noisy copies of the real vectors
        extra = noisy(pool, -(-(base_n - len(pool)) // len(pool)), a.noise, rng)[: base_n - len(pool)]
        pool = np.concatenate([pool, extra])
    work = a.workdir or Path(tempfile.mkdtemp(prefix="cc-quant-"))
    work.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
        "real_vectors": int(min(len(real) - a.queries, base_n)),
        "queries": a.queries,
        "noise_sigma": a.noise,
        "batch": a.batch,
        "sizes": [],
    }
    try:
        for n in sizes:
            doc["sizes"].append(run_size(n, pool, queries, a, work))
            if a.out:
                a.out.write_text(json.dumps(doc, indent=2))
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    doc["machine"]["loadavg_end"] = os.getloadavg()
    if a.out:
        a.out.write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
