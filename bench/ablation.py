#!/usr/bin/env python3
"""Ablation of the retrieval defaults: each row switches one choice off (or to its old value).

Runs ``bench/quality.py``'s in-process runner over the given sets for every variant and prints
a Markdown table (the one in bench/README.md) plus JSON. The embedding cache in ``--home`` is
shared by all variants, so only variants that change the embedded text pay for embedding.

usage: python bench/ablation.py SET [SET ...] [--home DIR] [--json OUT] [--compact]
       python bench/ablation.py --render OUT.json [--compact]   (the table again, from a saved run)
  --compact  c@1 / c@10 per set plus the means over all sets (for many sets at once)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (label, config overrides): the first row is the shipped default.
VARIANTS: list[tuple[str, dict[str, object]]] = [
    ("defaults", {}),
    ("no query adapter (the model's raw query vector)", {"query_adapter": False}),
    (
        "last stop's settings (no adapter, keyword 0.7, first merge 40, 100 candidates)",
        {"query_adapter": False, "keyword_weight": 0.7, "top_merge_gap": 40, "candidates": 100},
    ),
    ("test code not demoted (test weight 1.0, not 0.5)", {"test_weight": 1.0}),
    ("first result merges like the rest (15 lines, not 50)", {"top_merge_gap": -1}),
    ("first result merges up to 40 lines (not 50)", {"top_merge_gap": 40}),
    ("first result merges up to 60 lines (not 50)", {"top_merge_gap": 60}),
    ("rank fusion: RRF instead of score fusion", {"fusion": "rrf"}),
    ("keyword weight 0.7 instead of 0.6", {"keyword_weight": 0.7}),
    ("keyword weight 1.0 instead of 0.6", {"keyword_weight": 1.0}),
    ("no code-query boost (keyword weight not doubled for code queries)", {"code_query_boost": 1.0}),
    ("no prose / module-code priors (weights 1.0)", {"doc_weight": 1.0, "module_weight": 1.0}),
    ("no query expansion (compounds, abbreviations)", {"keyword_expansion": 0.0}),
    ("plain BM25 tokenizer (no identifier splitting)", {"keyword_tokenizer": "plain"}),
    ("exact symbol-name boost 0.3", {"symbol_boost": 0.3}),
    ("module-level code grouped up to 1000 chars (not 600)", {"module_chunk_chars": 1000}),
    ("chunks up to 800 chars (not 1000)", {"max_chunk_chars": 800}),
    ("chunks up to 1500 chars (not 1000)", {"max_chunk_chars": 1500}),
    ("other results merge hits up to 10 lines apart (not 15)", {"merge_gap": 10}),
    ("other results merge hits up to 25 lines apart (not 15)", {"merge_gap": 25}),
    ("merge only touching hits (gap 1 line, first result too)", {"merge_gap": 1, "top_merge_gap": 1}),
    ("no merging of hits", {"merge_gap": -1}),
    ("100 candidates per retriever (not 150)", {"candidates": 100}),
    ("50 candidates per retriever (not 150)", {"candidates": 50}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", type=Path)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", help="comma-separated row numbers to run (0 = defaults)")
    ap.add_argument("--compact", action="store_true")
    ap.add_argument("--render", type=Path, help="print the table of a saved --json run")
    a = ap.parse_args()
    if a.render:
        print(render(json.loads(a.render.read_text()), a.compact))
        return
    if not a.sets:
        ap.error("give at least one SET")
    os.environ["CLAUDE_CONTEXT_HOME"] = str(a.home or Path(tempfile.mkdtemp(prefix="cc-ablation-")))

    from quality import run_set

    from claude_context.config import load_config
    from claude_context.engine import Engine

    rows = []
    chosen = {int(i) for i in a.only.split(",")} if a.only else None
    for i, (label, overrides) in enumerate(VARIANTS):
        if chosen is not None and i not in chosen:
            continue
        engine = Engine(load_config(**overrides))
        per_set = {}
        try:
            for set_dir in a.sets:
                modes = ["hybrid", "semantic", "keyword"] if i == 0 else ["hybrid"]
                per_set[set_dir.name] = run_set(engine, set_dir, modes, 10)["modes"]
                engine.clear(set_dir / "corpus")
        finally:
            engine.close()
        rows.append({"label": label, "overrides": overrides, "sets": per_set})
        print(f"done: {label}", file=sys.stderr, flush=True)

    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))
    print(render(rows, a.compact))


def _fmt(metric: str, value: float) -> str:
    return f"{value:.0f}" if metric == "tok" else f"{value:.3f}"


def render(rows: list[dict], compact: bool) -> str:
    """The Markdown table: per set c@1, c@10, MRR, tokens (compact: c@1 / c@10, then the means)."""
    names = list(rows[0]["sets"])
    if compact:
        head = "| variant | " + " | ".join(names) + " | mean c@1 | mean c@10 | mean tok |"
    else:
        head = "| variant | " + " | ".join(f"{n} c@1 | {n} c@10 | {n} MRR | {n} tok" for n in names) + " |"
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        for mode in ("hybrid", "semantic", "keyword"):
            if mode not in row["sets"][names[0]]:
                continue
            label = row["label"] if mode == "hybrid" else f"defaults, {mode} only"
            ms = [row["sets"][n][mode]["all"] for n in names]
            if compact:
                cells = [f"{m['c@1']:.3f} / {m['c@10']:.3f}" for m in ms]
                cells += [_fmt(k, statistics.mean(m[k] for m in ms)) for k in ("c@1", "c@10", "tok")]
            else:
                cells = [_fmt(k, m[k]) for m in ms for k in ("c@1", "c@10", "mrr", "tok")]
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
