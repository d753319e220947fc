#!/usr/bin/env python3
"""Retrieval quality runner: the engine in process over eval sets in ../shared/eval's format.

A set is a folder with ``corpus/`` and ``queries.jsonl`` (``{"kind": "doc", "q": ..., "gold":
[{"path", "start", "end"}], "gold_files": [...]}``). For each set and mode it prints chunk hit@1
and hit@10 (a result overlapping the gold definition), file MRR, f@1/5/10 and tokens per query
(result characters / 4), overall and per language, as a table and as JSON.

usage: python bench/quality.py SET [SET ...] [--modes hybrid,semantic,keyword] [--limit 10]
           [--set key=value ...] [--home DIR] [--json OUT]
  --set      config overrides for ablations (e.g. --set rrf_k=30 --set keyword_weight=0.5)
  --home     reuse an index home (embedding cache): repeated runs only re-chunk, never re-embed
  --quantize-small  lower the int8/RaBitQ thresholds (train at 256 vectors) so the small public
             sets really go through codes + re-rank with --set quantization=int8|rabitq
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_set(set_dir: Path) -> tuple[Path, list[dict]]:
    queries = [
        json.loads(line) for line in (set_dir / "queries.jsonl").read_text().splitlines() if line.strip()
    ]
    return (set_dir / "corpus").resolve(), queries


def query_metrics(q: dict, results: list, k: int) -> dict[str, float]:
    files: list[str] = []
    for r in results:
        if r.path not in files:
            files.append(r.path)
    gold_files = set(q["gold_files"])
    rank = next((i + 1 for i, f in enumerate(files) if f in gold_files), None)
    m = {
        "mrr": 1 / rank if rank and rank <= k else 0.0,
        "f@1": float(bool(files[:1] and files[0] in gold_files)),
        "f@5": len(gold_files & set(files[:5])) / len(gold_files),
        "f@10": len(gold_files & set(files[:10])) / len(gold_files),
        "tok": sum(len(r.content) for r in results) / 4,
    }
    if q.get("kind") == "doc" and q.get("gold"):
        g = q["gold"][0]
        hit = [
            i
            for i, r in enumerate(results)
            if r.path == g["path"] and r.start_line <= g["end"] and r.end_line >= g["start"]
        ]
        m["c@1"] = float(bool(hit and hit[0] == 0))
        m["c@10"] = float(bool(hit))
    return m


def summarize(rows: list[dict[str, float]]) -> dict[str, float]:
    # c@1 / c@10 exist for doc queries only: a set that mixes in commit queries averages them
    # over its doc queries, and file metrics over all
    out: dict[str, float] = {}
    for k in ("c@1", "c@10", "mrr", "f@1", "f@5", "f@10", "tok"):
        values = [r[k] for r in rows if k in r]
        if values:
            out[k] = round(statistics.mean(values), 3)
    out["n"] = len(rows)
    return out


def run_set(engine, set_dir: Path, modes: list[str], limit: int) -> dict:
    from claude_context.chunkers import detect_language

    corpus, queries = load_set(set_dir)
    t = time.perf_counter()
    report = engine.index(corpus)
    index_s = time.perf_counter() - t
    out: dict = {
        "set": set_dir.name,
        "files": report.files_total,
        "chunks": report.chunks_total,
        "index_s": round(index_s, 2),
        "modes": {},
    }
    for mode in modes:
        rows, by_lang, lat = [], {}, []
        for q in queries:
            t = time.perf_counter()
            resp = engine.search(corpus, q["q"], limit=limit, mode=mode)
            lat.append((time.perf_counter() - t) * 1000)
            m = query_metrics(q, resp.results, limit)
            rows.append(m)
            lang = detect_language(q["gold_files"][0]) or "text"
            by_lang.setdefault(lang, []).append(m)
        summary = summarize(rows)
        summary["p50_ms"] = round(statistics.median(lat), 1)
        out["modes"][mode] = {
            "all": summary,
            "languages": {lang: summarize(r) for lang, r in sorted(by_lang.items())},
        }
    return out


def table(results: list[dict]) -> str:
    head = f"{'set':<10} {'mode':<9} {'c@1':>6} {'c@10':>6} {'mrr':>6} {'f@1':>6} {'tok':>7} {'ms':>6}"
    lines = [head, "-" * len(head)]
    for res in results:
        for mode, data in res["modes"].items():
            a = data["all"]
            lines.append(
                f"{res['set']:<10} {mode:<9} {a.get('c@1', 0):>6.3f} {a.get('c@10', 0):>6.3f} "
                f"{a['mrr']:>6.3f} {a['f@1']:>6.3f} {a['tok']:>7.0f} {a['p50_ms']:>6.1f}"
            )
            if len(data["languages"]) > 1:
                for lang, s in data["languages"].items():
                    lines.append(
                        f"{'':<10} {'  ' + lang:<9} {s.get('c@1', 0):>6.3f} {s.get('c@10', 0):>6.3f} "
                        f"{s['mrr']:>6.3f} {s['f@1']:>6.3f} {s['tok']:>7.0f}   n={s['n']}"
                    )
    return "\n".join(lines)


def parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"--set wants key=value, got {item!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="+", type=Path)
    ap.add_argument("--modes", default="hybrid,semantic,keyword")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--home", type=Path, help="index home to reuse (default: a fresh temporary one)")
    ap.add_argument("--json", type=Path, help="also write the JSON here")
    ap.add_argument("--quiet", action="store_true", help="JSON only on stdout")
    ap.add_argument("--quantize-small", action="store_true", help="quantize small sets too (see above)")
    a = ap.parse_args()
    if a.quantize_small:
        from claude_context.index.vectors.int8 import Int8VectorIndex
        from claude_context.index.vectors.rabitq import RabitqVectorIndex

        Int8VectorIndex.train_size = 256
        RabitqVectorIndex.min_train = 256

    home = a.home or Path(tempfile.mkdtemp(prefix="cc-quality-"))
    os.environ["CLAUDE_CONTEXT_HOME"] = str(home)
    from claude_context.config import load_config
    from claude_context.engine import Engine

    overrides = parse_overrides(a.overrides)
    engine = Engine(load_config(**overrides))
    results = []
    try:
        for set_dir in a.sets:
            if not (set_dir / "queries.jsonl").is_file():
                sys.exit(f"{set_dir}: not an eval set (no queries.jsonl)")
            results.append(run_set(engine, set_dir, [m.strip() for m in a.modes.split(",")], a.limit))
            engine.clear(set_dir / "corpus")  # next run re-chunks with its settings (cache stays)
    finally:
        engine.close()
    doc = {"overrides": overrides, "limit": a.limit, "quantize_small": a.quantize_small, "results": results}
    if a.json:
        a.json.write_text(json.dumps(doc, indent=2))
    if not a.quiet:
        print(table(results))
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
