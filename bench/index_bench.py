#!/usr/bin/env python3
"""Indexing and search benchmark: cold index, no-op re-index, one-file edit, warm search latency.

Default corpus: the installed ``transformers`` package's source (2,000+ Python files), copied to
a scratch folder so the one-file edit does not touch site-packages. Prints one JSON object.

usage: python bench/index_bench.py --json [--corpus DIR] [--home DIR] [--queries 100] [--keep]
  --home DIR   reuse an index home (skips the cold run if the corpus is already indexed there)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def default_corpus() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("transformers is not installed: pass --corpus DIR")
    return Path(next(iter(spec.submodule_search_locations)))


def copy_corpus(src: Path, dst: Path) -> None:
    def ignore(_dir: str, names: list[str]) -> list[str]:
        return [n for n in names if n == "__pycache__" or n.endswith((".pyc", ".so"))]

    shutil.copytree(src, dst, ignore=ignore, symlinks=True)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def sample_queries(engine, root: Path, n: int, seed: int = 7) -> list[str]:
    """Natural-language-ish queries from the corpus itself: symbol names spelled out + docstring heads."""
    store, _ = engine.resolve(root)
    rows = (
        store.meta._con()
        .execute("SELECT symbol, content FROM chunks WHERE kind IN ('function','method','class') ORDER BY id")
        .fetchall()
    )
    rnd = random.Random(seed)
    picks = rnd.sample(rows, min(n, len(rows)))
    out = []
    for symbol, content in picks:
        words = symbol.replace("_", " ").replace(".", " ")
        doc = next(
            (ln.strip().strip("\"'#/* ") for ln in content.split("\n")[1:6] if len(ln.strip()) > 20), ""
        )
        out.append(f"{words} {doc}".strip()[:200])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--json", action="store_true", help="print JSON only (default also prints it)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch corpus and home")
    a = ap.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="cc-bench-"))
    home = a.home or scratch / "home"
    os.environ["CLAUDE_CONTEXT_HOME"] = str(home)
    corpus_src = a.corpus or default_corpus()
    corpus = (home / "corpus") if a.home else (scratch / "corpus")
    if not corpus.exists():
        copy_corpus(corpus_src, corpus)

    from claude_context.config import load_config
    from claude_context.engine import Engine

    engine = Engine(load_config())
    result: dict[str, object] = {"corpus": str(corpus_src), "cores": os.cpu_count()}

    t = time.perf_counter()
    rep = engine.index(corpus)
    result["cold"] = {
        "files": rep.files_total,
        "chunks": rep.chunks_total,
        "chunks_embedded": rep.chunks_embedded,
        "seconds": round(time.perf_counter() - t, 2),
        "chunks_per_s": round(rep.chunks_written / max(rep.seconds, 1e-9), 1),
    }

    t = time.perf_counter()
    rep = engine.index(corpus)
    result["noop"] = {
        "files": rep.files_total,
        "files_changed": rep.files_changed,
        "chunks_embedded": rep.chunks_embedded,
        "seconds": round(time.perf_counter() - t, 3),
    }

    target = sorted(p for p in corpus.rglob("*.py") if p.stat().st_size > 4000)[0]
    with target.open("a", encoding="utf-8") as fh:
        fh.write("\n\ndef bench_added_function_for_edit(x):\n    return x * 2\n")
    t = time.perf_counter()
    rep = engine.index(corpus)
    result["one_file_edit"] = {
        "file": str(target.relative_to(corpus)),
        "files_changed": rep.files_changed,
        "chunks_written": rep.chunks_written,
        "chunks_embedded": rep.chunks_embedded,
        "seconds": round(time.perf_counter() - t, 3),
    }

    queries = sample_queries(engine, corpus, a.queries)
    engine.search(corpus, "warm up the model and the index")
    lat = []
    for q in queries:
        t = time.perf_counter()
        engine.search(corpus, q, limit=10)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    result["search_hybrid_ms"] = {
        "n": len(lat),
        "p50": round(statistics.median(lat), 2),
        "p95": round(lat[int(0.95 * (len(lat) - 1))], 2),
    }
    result["peak_rss_mb"] = peak_rss_mb()
    st = engine.status(corpus)
    result["index"] = {"bytes_on_disk": st.size_bytes, **st.index}
    engine.close()
    if not a.keep and not a.home:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
