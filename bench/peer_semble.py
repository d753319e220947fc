#!/usr/bin/env python3
"""The peer measured on the same trees: semble (PyPI) on the agent sets, scored like ours.

The published semble figures (``../shared/eval/agent/published.json``) come from semble's own
checkouts and its code model (potion-code-16M), which cannot be downloaded here. This runs the
installed ``semble`` package on the very corpora ``bench/retrieval.py`` uses, with a model2vec
model given as a folder (default: the static table a home distilled from our bundled MiniLM, so
both systems start from the same base model), and scores every query with ``retrieval.py``'s
``score_query`` (agent NDCG@10 as ``../shared/eval/agent_score.py``, doc chunk hit@1/@10, commit
file MRR). Prints JSON: per set (agent sets with their dev / held halves, ``retrieval.split_of``)
and the agent mean; ``--details`` writes one line a query. Sets default to ``retrieval.py``'s.

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
    from semble import SembleIndex

    corpus = (set_dir / "corpus").resolve()
    qs = [json.loads(line) for line in (set_dir / "queries.jsonl").read_text().splitlines() if line.strip()]
    t0 = time.perf_counter()
    index = SembleIndex.from_path(str(corpus), model_path=model)
    index_s = time.perf_counter() - t0
    rows = []
    for q in qs:
        res = []
        for r in index.search(q["q"], top_k=k):
            path = r.chunk.file_path
            if os.path.isabs(path):
                path = os.path.relpath(path, corpus)
            res.append(
                {
                    "path": path,
                    "start": r.chunk.start_line,
                    "end": r.chunk.end_line,
                    "chars": len(r.chunk.content),
                }
            )
        m = retrieval.score_query(q, res, k)
        rows.append(
            {
                "set": set_dir.name,
                "kind": q.get("kind", "doc"),
                "q": q["q"],
                "category": q.get("category", ""),
                "split": retrieval.split_of(set_dir.name, q["q"]),
                **m,
                "top": [f"{x['path']}:{x['start']}-{x['end']}" for x in res],
            }
        )

    def mean(kind: str, key: str, split: str | None = None) -> float | None:
        vals = [r[key] for r in rows if r["kind"] == kind and (split is None or r["split"] == split)]
        return round(statistics.mean(vals), 4) if vals else None

    summary = {"set": set_dir.name, "n": len(rows), "index_s": round(index_s, 2)}
    if any(r["kind"] == "agent" for r in rows):
        summary |= {
            "ndcg@10": mean("agent", "ndcg"),
            "dev": mean("agent", "ndcg", "dev"),
            "held": mean("agent", "ndcg", "held"),
        }
    if any(r["kind"] == "doc" for r in rows):
        summary |= {"c@1": mean("doc", "c@1"), "c@10": mean("doc", "c@10"), "doc_tok": mean("doc", "tok")}
    if any(r["kind"] == "commit" for r in rows):
        summary["commit_mrr"] = mean("commit", "mrr")
    return summary, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", type=Path)
    ap.add_argument("--model", required=True, help="a model2vec folder")
    ap.add_argument("--details", type=Path)
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()
    sets = a.sets or retrieval.default_sets()
    out, details = [], []
    for s in sets:
        summary, rows = run_set(s, a.model, a.k)
        print(json.dumps(summary), file=sys.stderr, flush=True)
        out.append(summary)
        details += rows
    if a.details:
        a.details.write_text("".join(json.dumps(r) + "\n" for r in details))
    import semble

    def mean(key: str) -> float | None:
        vals = [s[key] for s in out if s.get(key) is not None]
        return round(statistics.mean(vals), 4) if vals else None

    print(
        json.dumps(
            {
                "system": f"semble {getattr(semble, '__version__', '?')}",
                "model": a.model,
                "k": a.k,
                "sets": out,
                "mean": mean("ndcg@10"),
                "dev": mean("dev"),
                "held": mean("held"),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
