#!/usr/bin/env python3
"""The peer measured on the same trees: semble (PyPI) on the agent sets, scored like ours.

The published semble figures (``../shared/eval/agent/published.json``) come from semble's own
checkouts and its code model (potion-code-16M), which cannot be downloaded here. This runs the
installed ``semble`` package on the very corpora ``bench/retrieval.py`` uses, with a model2vec
model given as a folder (for instance the static table a home distilled from our bundled MiniLM, so
both systems start from the same base model), and scores every query with ``retrieval.py``'s
``score_query`` (agent NDCG@10 as ``../shared/eval/agent_score.py``, doc chunk hit@1/@10, commit
file MRR). Prints JSON in ``retrieval.py``'s shapes: per set (``summarize``), the agent mean
(``overall``) and the issue's figures on the dev / held / all halves (``figures_by_split``); its
table goes to stderr, ``--details`` writes one line a query. Sets default to ``retrieval.py``'s.

semble is not a dependency of claude-context: run this with an interpreter that has it, e.g.
``python -m venv /tmp/semble && /tmp/semble/bin/pip install semble==0.7.0``, then
``/tmp/semble/bin/python bench/peer_semble.py --model HOME/models/all-MiniLM-L6-v2-static-m2v``.

usage: peer_semble.py [SET ...] --model DIR [--details OUT.jsonl] [--k 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval  # metrics and splits only: it imports no claude_context code


def run_set(set_dir: Path, model: str, k: int) -> tuple[dict, list[dict]]:
    """``retrieval.run_set`` with semble in place of the engine: the same rows and summary."""
    from semble import SembleIndex

    corpus = (set_dir / "corpus").resolve()
    qs = [json.loads(line) for line in (set_dir / "queries.jsonl").read_text().splitlines() if line.strip()]
    t0 = time.perf_counter()
    index = SembleIndex.from_path(str(corpus), model_path=model)
    index_s = time.perf_counter() - t0
    rows, lat = [], []
    for q in qs:
        t0 = time.perf_counter()
        found = index.search(q["q"], top_k=k)
        lat.append((time.perf_counter() - t0) * 1000)
        res = [
            {
                "path": os.path.relpath(r.chunk.file_path, corpus)
                if os.path.isabs(r.chunk.file_path)
                else r.chunk.file_path,
                "start": r.chunk.start_line,
                "end": r.chunk.end_line,
                "chars": len(r.chunk.content),
            }
            for r in found
        ]
        rows.append(retrieval.query_row(set_dir.name, q, res, k))
    summary = {"set": set_dir.name, "chunks": len(index.chunks), "index_s": round(index_s, 2)}
    summary["p50_ms"] = round(statistics.median(lat), 1) if lat else None
    return summary | retrieval.summarize(rows), rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", type=Path)
    ap.add_argument("--model", required=True, help="a model2vec folder")
    ap.add_argument("--details", type=Path)
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()
    import semble

    sets, rows = [], []
    for set_dir in a.sets or retrieval.default_sets():
        summary, part = run_set(set_dir, a.model, a.k)
        print(json.dumps(summary), file=sys.stderr, flush=True)
        sets.append(summary)
        rows.extend(part)
    if a.details:
        a.details.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(retrieval.table(sets, rows), file=sys.stderr)
    doc = {"system": f"semble {semble.__version__}", "model": a.model, "k": a.k, "sets": sets}
    print(json.dumps(doc | retrieval.overall(sets, rows) | retrieval.figures_by_split(rows), indent=1))


if __name__ == "__main__":
    main()
