#!/usr/bin/env python3
"""Ablation of the ranking signals on all three query kinds (doc, commit, agent), dev and held-out.

The sets are indexed once; every variant only changes ranking knobs (``Config`` fields that
``RankSettings`` shares), so a variant costs one pass of queries. Each row: the shipped defaults
with one signal switched off or changed. Figures per split (``retrieval.split_of``: a fixed hash
half of every set's queries): agent NDCG@10 mean over sets and per category, doc chunk hit@1 /
hit@10 / tokens, commit file MRR.

usage: python bench/rank_ablation.py [SET ...] --home DIR [--json OUT] [--only LABEL-SUBSTRING]
       python bench/rank_ablation.py --render OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import retrieval

OFF = {
    "static_complete_weight": 0.0,
    "static_file_weight": 0.0,
    "seek_candidates": 150,
    "superseded_weight": 1.0,
    "definition_boost": 0.0,
    "file_coherence": 0.0,
    "barrel_weight": 1.0,
    "aside_weight": 1.0,
    "stub_weight": 1.0,
    "doc_weight": 0.8,
    "test_weight": 0.5,
    "seek_coherence": 0.0,
    "seek_saturation_decay": 1.0,
}
VARIANTS: list[tuple[str, dict[str, object]]] = [
    ("defaults", {}),
    ("previous ranking (none of the signals below, prose weight 0.8, tests 0.5)", OFF),
    ("no static ranking beside the complete index", {"static_complete_weight": 0.0}),
    ("no file closeness by the static table (static_file_weight 0)", {"static_file_weight": 0.0}),
    ("file-seeking queries: the narrow pool (seek_candidates 150)", {"seek_candidates": 150}),
    ("no superseded-version prior (v3/ beside v4/ at full weight)", {"superseded_weight": 1.0}),
    ("keyword mode", {"search_mode": "keyword"}),
    (
        "keyword mode with the hybrid file knobs (keyword_seek_* = seek_*)",
        {"search_mode": "keyword", "keyword_seek_coherence": 0.3, "keyword_seek_path_boost": 0.0},
    ),
    (
        "query types off (questions too: coherence 0.05, no saturation)",
        {"seek_coherence": 0.05, "seek_saturation_decay": 1.0},
    ),
    ("questions and topics: coherence 0.5, saturation 0.5", {"seek_coherence": 0.5}),
    ("questions and topics: path boost 0.3", {"seek_path_boost": 0.3}),
    ("no definition boost", {"definition_boost": 0.0}),
    ("definition boost for names inside sentences at half strength", {"definition_embedded": 0.5}),
    ("no file coherence", {"file_coherence": 0.0}),
    ("file coherence 0.1", {"file_coherence": 0.1}),
    ("file coherence 0.2", {"file_coherence": 0.2}),
    (
        "no path priors (barrels, asides, stubs 1.0)",
        {"barrel_weight": 1.0, "aside_weight": 1.0, "stub_weight": 1.0},
    ),
    ("prose weight 0.8 (the issue's start)", {"doc_weight": 0.8}),
    ("prose and test weights 0.5 (the last stop's)", {"doc_weight": 0.5, "test_weight": 0.5}),
    ("prose weight 0.3", {"doc_weight": 0.3}),
    ("path boost 0.3 (query words naming file / folder)", {"path_boost": 0.3}),
    ("path boost 1.0", {"path_boost": 1.0}),
    ("saturation 0.5 per extra result of a file", {"saturation_decay": 0.5}),
    ("saturation 0.7 after 2 results of a file", {"saturation_decay": 0.7, "saturation_free": 2}),
    ("no query adapter", {"query_adapter": False}),
]

COLUMNS = [
    ("agent", "agent"),
    ("arch", "agent.architecture"),
    ("sem", "agent.semantic"),
    ("sym", "agent.symbol"),
    ("click c@1", "click.c@1"),
    ("click c@10", "click.c@10"),
    ("express c@1", "express.c@1"),
    ("express c@10", "express.c@10"),
    ("click tok", "click.tok"),
    ("express tok", "express.tok"),
    ("click commit", "pallets+click.mrr"),
    ("express commit", "expressjs+express.mrr"),
]


def render(results: list[dict]) -> str:
    head = "| variant | split | " + " | ".join(c for c, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for res in results:
        for split in retrieval.SPLITS:
            fig = res[split]
            cells = [
                f"{fig.get(k, 0):.3f}" if not k.endswith(".tok") else f"{fig.get(k, 0):.0f}"
                for _, k in COLUMNS
            ]
            lines.append(f"| {res['label']} | {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", type=Path)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", action="append", default=[], help="run only variants whose label has this")
    ap.add_argument("--extra", action="append", default=[], help="LABEL:key=value,key=value extra variant")
    ap.add_argument("--render", type=Path)
    a = ap.parse_args()
    if a.render:
        print(render(json.loads(a.render.read_text())))
        return
    if not a.home:
        sys.exit("--home is required")
    os.environ["CLAUDE_CONTEXT_HOME"] = str(a.home)
    from claude_context.config import load_config
    from claude_context.engine import Engine

    variants = [v for v in VARIANTS if not a.only or any(o in v[0] for o in a.only)]
    for item in a.extra:
        label, _, spec = item.partition(":")
        variants.append((label, retrieval.parse_overrides(spec.split(","))))
    base = load_config()
    engine = Engine(base)
    kinds = {"doc", "commit", "agent"}
    results = []
    try:
        for label, overrides in variants:
            engine.config = base.replace(**overrides)
            rows: list[dict] = []
            for set_dir in a.sets or retrieval.default_sets():
                rows.extend(retrieval.run_queries(engine, set_dir, 10, kinds)[1])
            res = {"label": label, "overrides": overrides} | retrieval.figures_by_split(rows)
            results.append(res)
            print(json.dumps(res), file=sys.stderr, flush=True)
    finally:
        engine.close()
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    print(render(results))


if __name__ == "__main__":
    main()
