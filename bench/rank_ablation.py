#!/usr/bin/env python3
"""Ablation of the ranking signals on all three query kinds (doc, commit, agent), dev and held-out.

The sets are indexed once; every variant only changes ranking knobs (``Config`` fields that
``RankSettings`` shares), so a variant costs one pass of queries. Each row: the shipped defaults
with one signal switched off or changed. Figures per split (``retrieval.split_of``: a fixed hash
half of every set's queries): agent NDCG@10 mean over sets and per category, doc chunk hit@1 /
hit@10 / tokens, commit file MRR.

``--ascent``: coordinate ascent from the shipped defaults instead of the fixed variants. Each knob
of ``STEPS`` in turn is scaled (or shifted) by each of its steps; a step is kept when it lifts the
dev half's objective (agent NDCG@10 mean + half the mean commit file MRR) by more than
``--min-gain``, then the next round starts; it stops after a round with no step kept. Every trial
is printed with both halves, so what dev chose is judged on held.

usage: python bench/rank_ablation.py [SET ...] --home DIR [--json OUT] [--only LABEL-SUBSTRING]
       python bench/rank_ablation.py [SET ...] --home DIR --ascent [--min-gain 0.002] [--json OUT]
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
    "central_file_weight": 0.0,
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
    ("no file centrality (central_file_weight 0)", {"central_file_weight": 0.0}),
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

# --ascent: multipliers of each knob (a string: added instead)
STEPS: dict[str, tuple[float | str, ...]] = {
    "dense_weight": (0.8, 1.25),
    "keyword_weight": (0.75, 1.3),
    "code_query_boost": (0.75, 1.3),
    "static_complete_weight": (0.6, 1.6),
    "static_file_weight": (0.5, 2.0),
    "central_file_weight": (0.6, 1.5),
    "seek_coherence": (0.7, 1.4),
    "seek_saturation_decay": (0.8, 1.3),
    "seek_path_boost": ("+0.1", "+0.2"),
    "file_coherence": (0.0, 2.0),
    "doc_weight": (0.8, 1.25),
    "test_weight": (0.7, 1.4),
    "module_weight": (0.85, 1.1),
    "definition_boost": (0.6, 1.5),
    "aside_weight": (0.6, 1.7),
    "barrel_weight": (0.6, 1.5),
    "top_merge_gap": (0.7, 1.4),
    "merge_gap": (0.6, 1.5),
}

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


def objective(fig: dict[str, float]) -> float:
    """What ``--ascent`` maximizes on one half: agent NDCG@10 + half the mean commit file MRR."""
    commits = [v for k, v in fig.items() if k.endswith(".mrr")]
    return fig.get("agent", 0.0) + (0.5 * sum(commits) / len(commits) if commits else 0.0)


def _stepped(value: float, step: float | str) -> float:
    out = value + float(step) if isinstance(step, str) else value * step
    return round(out) if isinstance(value, int) else round(out, 3)


def ascent(measure, base, min_gain: float) -> list[dict]:
    """Coordinate ascent on the dev half (module docstring); ``measure(overrides)`` gives
    ``figures_by_split``. Returns every trial, the kept ones marked."""
    kept: dict[str, object] = {}
    best = measure(kept)
    trials = [{"overrides": {}, "kept": True} | best]
    improved = True
    while improved:  # a round: the knobs in turn until one step is kept, then from the first again
        improved = False
        for knob, steps in STEPS.items():
            now = kept.get(knob, getattr(base, knob))
            tries = [_stepped(now, st) for st in steps if isinstance(st, str) or now]
            for value in [v for v in tries if v != now]:
                fig = measure(kept | {knob: value})
                gain = objective(fig["dev"]) - objective(best["dev"])
                trials.append({"overrides": kept | {knob: value}, "kept": gain > min_gain} | fig)
                print(
                    json.dumps(
                        {
                            "trial": {knob: value},
                            "dev": round(objective(fig["dev"]), 4),
                            "held": round(objective(fig["held"]), 4),
                            "gain": round(gain, 4),
                        }
                    ),
                    file=sys.stderr,
                    flush=True,
                )
                if gain > min_gain:
                    kept, best, improved = kept | {knob: value}, fig, True
                    break
            if improved:
                break
    return trials


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", type=Path)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", action="append", default=[], help="run only variants whose label has this")
    ap.add_argument("--extra", action="append", default=[], help="LABEL:key=value,key=value extra variant")
    ap.add_argument("--render", type=Path)
    ap.add_argument("--ascent", action="store_true", help="coordinate ascent on the dev half")
    ap.add_argument("--min-gain", type=float, default=0.002)
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

    def measure(overrides: dict) -> dict:
        engine.config = base.replace(**overrides)
        rows: list[dict] = []
        for set_dir in a.sets or retrieval.default_sets():
            rows.extend(retrieval.run_queries(engine, set_dir, 10, kinds)[1])
        return retrieval.figures_by_split(rows)

    results = []
    try:
        if a.ascent:
            trials = ascent(measure, base, a.min_gain)
            if a.json:
                a.json.write_text(json.dumps(trials, indent=1))
            print(json.dumps({"kept": [t["overrides"] for t in trials if t["kept"]][-1]}))
            return
        for label, overrides in variants:
            res = {"label": label, "overrides": overrides} | measure(overrides)
            results.append(res)
            print(json.dumps(res), file=sys.stderr, flush=True)
    finally:
        engine.close()
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    print(render(results))


if __name__ == "__main__":
    main()
