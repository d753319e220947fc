#!/usr/bin/env python3
"""What storing references (``chunkers/refs.py``, the ``refs`` table) costs at index time.

For every file discovery keeps in a corpus: the time to chunk it and the extra time to extract its
references (one process, no model: the part of indexing that references add to). Then the corpus
is indexed into a scratch home, and the SQLite file's bytes are split by table (``dbstat``) to
show what the ``refs`` table and its two indexes add. Finally the lookup latency of
``Engine.references`` for the most used names. Prints one JSON object.

usage: python bench/refs_bench.py --corpus DIR [--rounds 3] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path


def chunk_and_refs_seconds(corpus: Path, rounds: int) -> dict:
    from claude_context.chunkers import chunk_file, detect_language
    from claude_context.chunkers.refs import LANGUAGES, extract_refs
    from claude_context.discovery import discover, read_source
    from claude_context.ignore import DiscoveryOptions

    files = []
    for entry in discover(corpus, DiscoveryOptions()):
        try:
            files.append((entry.path, read_source(entry.abs_path, 1 << 20)))
        except Exception:
            continue
    chunk_s, refs_s, n_refs = [], [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for path, text in files:
            chunk_file(path, text, max_chars=1000, module_chars=600)
        t1 = time.perf_counter()
        n_refs = 0
        for path, text in files:
            n_refs += len(extract_refs(detect_language(path) or "text", text))
        t2 = time.perf_counter()
        chunk_s.append(t1 - t0)
        refs_s.append(t2 - t1)
    with_refs = sum(1 for p, _ in files if (detect_language(p) or "") in LANGUAGES)
    chunk, refs = statistics.median(chunk_s), statistics.median(refs_s)
    return {
        "files": len(files),
        "files_with_reference_patterns": with_refs,
        "bytes": sum(len(t.encode()) for _, t in files),
        "refs": n_refs,
        "chunk_s": round(chunk, 3),
        "refs_s": round(refs, 3),
        "refs_over_chunking": round(refs / chunk, 3) if chunk else None,
    }


def table_bytes(db: Path) -> dict:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    con.close()
    by = dict(rows)
    refs = sum(v for k, v in by.items() if k in {"refs", "refs_name", "refs_path"})
    total = sum(by.values())
    return {
        "sqlite_bytes": total,
        "refs_bytes": refs,
        "sqlite_bytes_without_refs": total - refs,
        "refs_share": round(refs / total, 3) if total else 0.0,
        "chunks_bytes": by.get("chunks", 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--home", type=Path, default=None, help="index home (a warm embedding cache helps)")
    args = ap.parse_args()
    corpus = args.corpus.resolve()
    out: dict = {"corpus": str(corpus), "extraction": chunk_and_refs_seconds(corpus, args.rounds)}

    from claude_context.config import load_config
    from claude_context.engine import Engine

    home = args.home or Path(tempfile.mkdtemp(prefix="refs-bench-"))
    engine = Engine(load_config(env={"CLAUDE_CONTEXT_HOME": str(home)}))
    try:
        t0 = time.perf_counter()
        report = engine.index(corpus)
        out["index_s"] = round(time.perf_counter() - t0, 2)
        out["chunks"] = report.chunks_total
        cb = engine.resolve(corpus)[0]
        out["storage"] = table_bytes(cb.folder / "index.sqlite")
        con = sqlite3.connect(cb.folder / "index.sqlite")
        top = [
            r[0] for r in con.execute("SELECT name FROM refs GROUP BY name ORDER BY COUNT(*) DESC LIMIT 20")
        ]
        con.close()
        times = []
        for name in top:
            t0 = time.perf_counter()
            engine.references(corpus, name)
            times.append((time.perf_counter() - t0) * 1000)
        out["lookup_ms_p50"] = round(statistics.median(times), 2) if times else None
        out["lookup_ms_max"] = round(max(times), 2) if times else None
    finally:
        engine.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
