#!/usr/bin/env python3
"""Indexing and search benchmark: cold index, no-op re-index, one-file edit, warm search latency,
and the embedding backends' throughput.

Default corpus: the installed ``transformers`` package's source (2,000+ Python files), copied to
a scratch folder so the one-file edit does not touch site-packages. Prints one JSON object.

usage: python bench/index_bench.py --json [--corpus DIR] [--home DIR] [--queries 100] [--keep]
           [--backends torch,onnx,onnx-int8] [--sample 2000] [--compare DIR ...] [--ratio DIR ...]
           [--rounds 2] [--no-cold] [--until-keyword N]
  --home DIR     reuse an index home (skips the cold run if the corpus is already indexed there)
  --backends     model-only chunks/s of each backend on a fixed sample of the corpus's chunks (cold
                 embedding cache), measured in interleaved rounds so machine load hits all alike;
                 also each backend's mean/min cosine to torch on that sample ("" = skip)
  --compare DIR  cold end-to-end index of DIR (e.g. the click eval corpus) with each backend,
                 alternating backends for --rounds rounds (models loaded beforehand)
  --ratio DIR    end-to-end cold index of DIR against the model alone on the same chunks, in
                 alternating rounds (the pipeline's overhead, with load changes cancelled out)
  --until-keyword N  only the keyword probe: N fresh ``claude-context index`` processes on cold
                 homes, each stopped as soon as the last file's symbol is found (< 1 min each)
  The cold run (the configured backend, CLAUDE_CONTEXT_BACKEND) reports end-to-end chunks/s, the
  share of wall time the model was busy, and when a symbol of the last file in discovery order
  first came back from a keyword search (keyword_searchable_s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BACKENDS = ("torch", "onnx", "onnx-int8")


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
    store = engine.resolve(root)[0].store
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


def corpus_sample(corpus: Path, n: int, seed: int = 11) -> list[str]:
    """Embed texts of ``n`` chunks from files in a fixed random order (the engine's chunking)."""
    from claude_context.chunkers import chunk_file
    from claude_context.config import load_config
    from claude_context.discovery import DiscoveryOptions, discover, read_source

    cfg = load_config()
    entries = list(discover(corpus, DiscoveryOptions(max_file_bytes=cfg.max_file_bytes), []))
    random.Random(seed).shuffle(entries)
    texts: list[str] = []
    for e in entries:
        try:
            text = read_source(e.abs_path, cfg.max_file_bytes)
        except Exception:
            continue
        texts += [c.embed_text() for c in chunk_file(e.path, text, max_chars=cfg.max_chunk_chars)]
        if len(texts) >= n:
            break
    return texts[:n]


def model_only(texts: list[str], backends: list[str], rounds: int = 4) -> dict[str, dict]:
    """chunks/s of each backend alone on ``texts``, in interleaved rounds (same conditions)."""
    from claude_context.config import load_config
    from claude_context.embedding import Embedder, read_manifest
    from claude_context.pipeline import EMBED_WINDOW

    cfg = load_config()
    out: dict[str, dict] = {}
    embedders = {}
    for b in backends:
        t = time.perf_counter()
        e = Embedder(
            cfg.model, device="cpu", backend=b, batch_size=cfg.batch_size, models_dir=cfg.model_cache_dir
        )
        e.embed(["warm up"])
        embedders[b] = e
        out[b] = {"model_id": e.model_id, "load_s": round(time.perf_counter() - t, 2), "seconds": 0.0}
        if b != "torch":
            from claude_context.embedding import export_dir

            m = read_manifest(export_dir(cfg.model_cache_dir, e.model_name, b, e.arch)) or {}
            out[b]["export_s"] = m.get("seconds")
    vecs: dict[str, list[np.ndarray]] = {b: [] for b in backends}
    parts = np.array_split(np.arange(len(texts)), rounds)
    for r, idx in enumerate(parts):
        order = backends if r % 2 == 0 else backends[::-1]
        for b in order:
            part = [texts[i] for i in idx]
            t = time.perf_counter()
            for i in range(0, len(part), EMBED_WINDOW):  # the pipeline's window per model call
                vecs[b].append(embedders[b].embed(part[i : i + EMBED_WINDOW]))
            out[b]["seconds"] += time.perf_counter() - t
    for b in backends:
        out[b]["chunks"] = len(texts)
        out[b]["chunks_per_s"] = round(len(texts) / out[b]["seconds"], 1)
        out[b]["seconds"] = round(out[b]["seconds"], 2)
    if "torch" in backends:
        ref = np.vstack(vecs["torch"])
        for b in backends:
            cos = np.sum(ref * np.vstack(vecs[b]), axis=1)
            out[b]["cosine_to_torch"] = {
                "mean": round(float(cos.mean()), 4),
                "min": round(float(cos.min()), 4),
            }
            out[b]["x_torch"] = round(out[b]["chunks_per_s"] / out["torch"]["chunks_per_s"], 2)
    return out


def last_symbol(corpus: Path) -> tuple[str, str] | None:
    """(path, function name) from the last file in discovery order that defines one: its longest
    non-dunder name, so that a keyword search for it has one right answer (``__iter__`` has
    hundreds)."""
    from claude_context.discovery import DiscoveryOptions, discover

    for e in reversed(list(discover(corpus, DiscoveryOptions(), []))):
        if e.path.endswith(".py"):
            text = e.abs_path.read_text(errors="replace")
            names = [
                n for n in re.findall(r"^\s*def ([A-Za-z_][A-Za-z0-9_]{6,})\(", text, re.M) if "__" not in n
            ]
            if names:
                return e.path, max(names, key=len)
    return None


def cold_index(engine, corpus: Path) -> dict:
    """Cold index with a keyword probe: when is the end of the tree keyword-searchable?"""
    target = last_symbol(corpus)
    t0 = time.perf_counter()
    found: dict[str, float] = {}
    stop = threading.Event()

    def probe() -> None:
        path, name = target
        while not stop.is_set():
            try:
                hits = engine.search(corpus, name, mode="keyword", limit=10).results
                if any(h.path == path for h in hits):
                    found["s"] = round(time.perf_counter() - t0, 2)
                    return
            except Exception:
                pass
            time.sleep(0.2)

    prober = threading.Thread(target=probe, daemon=True) if target else None
    if prober:
        prober.start()
    rep = engine.index(corpus)
    wall = time.perf_counter() - t0
    stop.set()
    out = {
        "files": rep.files_total,
        "chunks": rep.chunks_total,
        "chunks_embedded": rep.chunks_embedded,
        "model_id": rep.model_id,
        "seconds": round(wall, 2),
        "chunks_per_s": round(rep.chunks_written / max(wall, 1e-9), 1),
        "model_seconds": rep.model_seconds,
        "model_busy_share": round(rep.model_seconds / max(wall, 1e-9), 3),
        "keyword_probe": {"path": target[0], "symbol": target[1]} if target else None,
        "keyword_searchable_s": found.get("s"),
    }
    return out


def keyword_probe_cli(corpus: Path, timeout: float = 120.0) -> dict:
    """A fresh ``claude-context index`` process on a cold home; a second process (this one) polls
    keyword search for a symbol of the last file in discovery order. The indexer is stopped once
    it answers: this measures what a user (or agent) waits for a first keyword answer."""
    import subprocess

    from claude_context.config import load_config
    from claude_context.engine import Engine

    target = last_symbol(corpus)
    if target is None:
        return {}
    home = Path(tempfile.mkdtemp(prefix="cc-probe-"))
    env = dict(
        os.environ,
        CLAUDE_CONTEXT_HOME=str(home),
        CLAUDE_CONTEXT_MODEL_CACHE=str(load_config().model_cache_dir),
    )
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_context.cli", "index", str(corpus), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    reader = Engine(load_config(env=env))
    out: dict[str, object] = {"path": target[0], "symbol": target[1], "keyword_searchable_s": None}
    try:
        while time.perf_counter() - t0 < timeout and proc.poll() is None:
            try:
                hits = reader.search(corpus, target[1], mode="keyword", limit=10).results
                if any(h.path == target[0] for h in hits):
                    out["keyword_searchable_s"] = round(time.perf_counter() - t0, 2)
                    st = reader.status(corpus)
                    out["at_that_time"] = {"chunks": st.chunks, "semantic_coverage": st.semantic_coverage}
                    break
            except Exception:
                pass
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
        reader.close()
        shutil.rmtree(home, ignore_errors=True)
    return out


def e2e_vs_model(corpus: Path, rounds: int) -> dict:
    """End-to-end cold index of ``corpus`` against the model alone on exactly the same chunks,
    alternating the two in each round so machine load affects both alike (model loaded first)."""
    from claude_context.config import load_config
    from claude_context.embedding import Embedder
    from claude_context.engine import Engine
    from claude_context.pipeline import EMBED_WINDOW

    base = load_config()
    emb = Embedder(base.model, device=base.device, backend=base.backend, models_dir=base.model_cache_dir)
    emb.embed(["warm up"])
    texts = corpus_sample(corpus, 10**9, seed=0)
    e2e_s = model_s = 0.0
    chunks = 0
    for r in range(rounds):
        for step in ("e2e", "model") if r % 2 == 0 else ("model", "e2e"):
            t = time.perf_counter()
            if step == "model":
                for i in range(0, len(texts), EMBED_WINDOW):
                    emb.embed(texts[i : i + EMBED_WINDOW])
                model_s += time.perf_counter() - t
                continue
            home = Path(tempfile.mkdtemp(prefix="cc-ratio-"))
            eng = Engine(base.replace(home=home, model_cache=str(base.model_cache_dir)))
            rep = eng.index(corpus)
            e2e_s += time.perf_counter() - t
            chunks = rep.chunks_total
            eng.close()
            shutil.rmtree(home, ignore_errors=True)
    assert chunks == len(texts), (chunks, len(texts))  # the same chunks both ways
    e2e, model = rounds * chunks / e2e_s, rounds * len(texts) / model_s
    return {
        "model_id": emb.model_id,
        "chunks": chunks,
        "rounds": rounds,
        "e2e_chunks_per_s": round(e2e, 1),
        "model_chunks_per_s": round(model, 1),
        "e2e_vs_model": round(e2e / model, 3),
    }


def compare_cold(corpus: Path, backends: list[str], rounds: int) -> dict:
    """Cold end-to-end index of ``corpus`` per backend (fresh home and cache each time)."""
    from claude_context.config import load_config
    from claude_context.embedding import Embedder
    from claude_context.engine import Engine

    base = load_config()
    for b in backends:  # load (and export) outside the timed runs
        Embedder(base.model, device="cpu", backend=b, models_dir=base.model_cache_dir).embed(["warm up"])
    runs: dict[str, list[dict]] = {b: [] for b in backends}
    for r in range(rounds):
        for b in backends if r % 2 == 0 else backends[::-1]:
            home = Path(tempfile.mkdtemp(prefix=f"cc-cmp-{b}-"))
            eng = Engine(
                base.replace(home=home, backend=b, device="cpu", model_cache=str(base.model_cache_dir))
            )
            t = time.perf_counter()
            rep = eng.index(corpus)
            wall = time.perf_counter() - t
            eng.close()
            shutil.rmtree(home, ignore_errors=True)
            runs[b].append({"seconds": round(wall, 2), "chunks": rep.chunks_total})
    out: dict[str, dict] = {}
    for b in backends:
        secs = sum(x["seconds"] for x in runs[b])
        chunks = sum(x["chunks"] for x in runs[b])
        out[b] = {"runs": runs[b], "chunks_per_s": round(chunks / secs, 1)}
    if "torch" in out:
        for b in backends:
            out[b]["x_torch"] = round(out[b]["chunks_per_s"] / out["torch"]["chunks_per_s"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--json", action="store_true", help="print JSON only (default also prints it)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch corpus and home")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="model-only comparison ('' = skip)")
    ap.add_argument("--sample", type=int, default=2000, help="chunks in the model-only sample")
    ap.add_argument("--compare", type=Path, action="append", default=[], help="cold index per backend")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds for --compare")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold/no-op/edit/search part")
    ap.add_argument("--ratio", type=Path, action="append", default=[], help="e2e vs model-only on DIR")
    ap.add_argument("--until-keyword", type=int, default=0, metavar="N", help="keyword probe only, N runs")
    a = ap.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="cc-bench-"))
    home = a.home or scratch / "home"
    os.environ["CLAUDE_CONTEXT_HOME"] = str(home)
    corpus_src = a.corpus or default_corpus()
    corpus = (home / "corpus") if a.home else (scratch / "corpus")
    if not corpus.exists():
        copy_corpus(corpus_src, corpus)

    from claude_context.config import load_config
    from claude_context.embedding import available_cores, cpu_quant_arch
    from claude_context.engine import Engine

    cfg = load_config()
    result: dict[str, object] = {
        "corpus": str(corpus_src),
        "cores": os.cpu_count(),
        "cores_available": available_cores(),
        "cpu_quant_arch": cpu_quant_arch(),
        "backend": cfg.backend,
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }
    if a.until_keyword:
        runs = []
        for _ in range(a.until_keyword):
            run = keyword_probe_cli(corpus)
            run["load_avg"] = [round(x, 2) for x in os.getloadavg()]
            runs.append(run)
        result["keyword_probe_cli"] = runs
        times = [r["keyword_searchable_s"] for r in runs if r.get("keyword_searchable_s") is not None]
        result["keyword_searchable_s"] = {
            "runs": times,
            "median": statistics.median(times) if times else None,
        }
        if not a.keep and not a.home:
            shutil.rmtree(scratch, ignore_errors=True)
        print(json.dumps(result, indent=None if a.json else 2))
        return
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    if backends:
        texts = corpus_sample(corpus, a.sample)
        result["model_only"] = {
            "sample_chunks": len(texts),
            "mean_chars": round(statistics.mean(len(t) for t in texts), 1),
            **model_only(texts, backends),
        }
    for d in a.compare:
        result.setdefault("compare_cold", {})[str(d)] = compare_cold(
            d.resolve(), backends or list(BACKENDS), a.rounds
        )
    for d in a.ratio:
        result.setdefault("e2e_vs_model", {})[str(d)] = e2e_vs_model(d.resolve(), max(2, a.rounds))
    if a.no_cold:
        result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(result, indent=None if a.json else 2))
        return

    result["keyword_probe_cli"] = keyword_probe_cli(corpus)
    engine = Engine(cfg)
    result["cold"] = cold_index(engine, corpus)
    models = result.get("model_only") or {}
    mo = next(
        (
            v
            for v in models.values()
            if isinstance(v, dict) and v.get("model_id") == result["cold"]["model_id"]
        ),
        None,
    )
    if mo:  # end to end against the model alone on a sample of the same corpus
        result["cold"]["model_only_chunks_per_s"] = mo["chunks_per_s"]
        result["cold"]["e2e_vs_model"] = round(result["cold"]["chunks_per_s"] / mo["chunks_per_s"], 3)

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
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    st = engine.status(corpus)
    result["index"] = {"bytes_on_disk": st.size_bytes, **st.index}
    engine.close()
    if not a.keep and not a.home:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
