#!/usr/bin/env python3
"""Cold-index answers simulated on fully indexed sets: keywords only, keywords + the static table,
the complete hybrid, and partial transformer coverage with and without the static table.

For each agent set (indexed in ``--home`` as ``bench/retrieval.py`` does; copy a home, do not
share one another run uses) every chunk gets its static vector (``embedding/static.py``'s table).
A state is (coverage c, static weight w, scope): the first c of the chunks in embed order
(``pipeline.embed_rank``, then id) keep their transformer vectors (dense weight x c, as
``searching`` does), and the static ranking covers the rest (``rest``: weight w; ``rest1c``:
w x (1 - c)) or every chunk (``all``: w x (1 - c)). Rankings go through the engine's own
``retrieve`` (keywords + definitions), ``fuse`` and result shaping, scored by
``bench/retrieval.py``'s ``score_query`` (NDCG@10, semble's metric). Prints JSON: per set and mean.
``--whole``: the whole table's ranking and each file's closeness (``searching.complete_static_hits``:
file-seeking queries) join at full coverage only (``end``, the engine before the seventh session)
or at every coverage (``always``, the engine since); preset ``coverage`` walks c from 0 to 1.

usage: python bench/static_sim.py --home DIR [--table DIR] [--preset sweep|mixed|coverage]
           [--knobs engine|hybrid] [--whole none|end|always] [SET ...]
  --table  a model2vec folder (default: the home's model cache table, built if missing)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import retrieval

PRESETS = {
    "sweep": {
        "keyword": (0.0, None, "rest"),
        "full": (1.0, None, "rest"),
        **{f"static{w}": (0.0, w, "rest") for w in (0.25, 0.5, 0.75, 1.0)},
        **{f"c0.25-static{w}": (0.25, w, "rest") for w in (0.5, 1.0)},
    },
    "mixed": {
        "keyword": (0.0, None, "rest"),
        **{f"c{c}-none": (c, None, "rest") for c in (0.1, 0.25, 0.5, 0.75)},
        **{
            f"c{c}-{scope}{w}": (c, w, scope)
            for c in (0.1, 0.25, 0.5, 0.75)
            for w in (0.5, 1.0)
            for scope in ("rest", "rest1c", "all")
        },
    },
    "coverage": {f"c{c}": (c, 0.5, "rest") for c in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)},
}


def run_set(engine, table, set_dir: Path, states: dict, knobs: str, whole: str = "none") -> dict:
    import numpy as np

    from claude_context.embedding.static import StaticVectors
    from claude_context.index.base import Hit
    from claude_context.pipeline import embed_rank
    from claude_context.records import SearchFilter
    from claude_context.search.ranking import for_coverage, fuse
    from claude_context.search.retrieve import retrieve
    from claude_context.searching import STATIC_RANKED, _seeks_files, _shape, candidates

    corpus = (set_dir / "corpus").resolve()
    qs = [json.loads(line) for line in (set_dir / "queries.jsonl").read_text().splitlines() if line.strip()]
    engine.index(corpus)
    cb, _ = engine.resolve(corpus)
    meta, index = cb.store.meta, cb.store.chunk_index()
    rows = [sc for batch in meta.iter_chunks() for sc in batch]
    ids = np.array([sc.id for sc in rows])
    held = StaticVectors(table)  # every chunk's vector: the engine's own ranking and file closeness
    held.add([(sc.id, sc.embed_key, sc.chunk.embed_text()) for sc in rows])
    order = sorted(
        range(len(rows)), key=lambda i: (embed_rank(SimpleNamespace(path=rows[i].chunk.path)), ids[i])
    )
    base = engine.rank_settings()
    source = cb.line_source()
    scores: dict[str, list[float]] = {name: [] for name in states}
    for q in qs:
        k = max(50, candidates(engine.config, q["q"]))  # the engine's pool (wider for file-seeking)
        keyword = retrieve(index, meta, q["q"], None, "keyword", None, SearchFilter(), base, k)
        qvec = cb.embed_query(q["q"])
        qs_vec = table.encode([q["q"]])[0]
        scored = dict(held.rank(qs_vec, None, len(rows)))  # each chunk's cosine to the query
        sims = np.array([scored[i] for i in ids.tolist()])
        seeks = _seeks_files(q["q"])
        for name, (c, w, scope) in states.items():
            rankings = list(keyword)
            # the engine's knobs at coverage c (ranking.for_coverage: dense weight x c, seek knobs
            # toward their keyword-only values); "hybrid": the dense weight only
            st = (
                for_coverage(base, c)
                if knobs == "engine"
                else dataclasses.replace(base, dense_weight=base.dense_weight * c)
            )
            n_cov = round(c * len(rows))
            if c > 0:
                covered = set(ids[order[:n_cov]].tolist()) if c < 1 else None
                rankings.append(("dense", index.search_dense(qvec, k, covered)))
            if w is not None and c < 1:
                mask = np.ones(len(rows), bool)
                if scope != "all":
                    mask[order[:n_cov]] = False
                cand = np.where(mask)[0]
                top = cand[np.argsort(-sims[cand])[:k]]
                rankings.append(("static", [Hit(int(ids[i]), float(sims[i])) for i in top]))
                weight = w if scope == "rest" else w * (1 - c)
                st = dataclasses.replace(st, static_weight=base.dense_weight * weight)
            joins = whole == "always" or (whole == "end" and c >= 1)
            if joins and seeks:
                rankings.append(
                    ("static_all", [Hit(i, s) for i, s in held.rank(qs_vec, None, STATIC_RANKED)])
                )
            found = meta.get_chunks(list({h.id for _, hits in rankings for h in hits}))
            if joins and seeks and engine.config.static_file_weight:
                files = held.file_scores(qs_vec, meta)
                rankings.append(
                    (
                        "files",
                        [Hit(i, files[sc.chunk.path]) for i, sc in found.items() if sc.chunk.path in files],
                    )
                )
            shaped, _ = _shape(engine, fuse(q["q"], rankings, found, st), 10, source)
            res = [
                {"path": r.path, "start": r.start_line, "end": r.end_line, "chars": len(r.content)}
                for r in shaped
            ]
            scores[name].append(retrieval.score_query(q, res, 10)["ndcg"])
    return {name: round(statistics.mean(v), 4) for name, v in scores.items()} | {"chunks": len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", type=Path)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--table", type=Path)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="sweep")
    ap.add_argument("--knobs", choices=["engine", "hybrid"], default="engine")
    ap.add_argument("--whole", choices=["none", "end", "always"], default="none")
    a = ap.parse_args()
    os.environ["CLAUDE_CONTEXT_HOME"] = str(a.home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["CLAUDE_CONTEXT_STATIC_EMBEDDINGS"] = "0"  # the simulation brings its own table
    from claude_context.config import load_config
    from claude_context.embedding import static
    from claude_context.engine import Engine

    engine = Engine(load_config())
    if a.table:
        table = static.StaticTable(a.table)
    else:
        table = static.wait_for_build(engine.config.model_cache_dir, engine.config.model, 1800)
        if table is None:
            sys.exit("no static table (model2vec missing, or its build failed)")
    states = PRESETS[a.preset]
    sets = a.sets or sorted(p.parent for p in Path("/work/eval/agent").glob("*/queries.jsonl"))
    out: dict = {
        "preset": a.preset,
        "knobs": a.knobs,
        "whole": a.whole,
        "states": {n: list(s) for n, s in states.items()},
        "sets": {},
    }
    try:
        for set_dir in sets:
            out["sets"][set_dir.name] = run_set(engine, table, set_dir, states, a.knobs, a.whole)
            print(json.dumps({set_dir.name: out["sets"][set_dir.name]}), file=sys.stderr, flush=True)
    finally:
        engine.close()
    out["mean"] = {n: round(statistics.mean(s[n] for s in out["sets"].values()), 4) for n in states}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
