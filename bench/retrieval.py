#!/usr/bin/env python3
"""One table for the three query kinds, the engine in process: doc, commit and agent queries.

Each set (``../shared/eval`` format: ``corpus/`` + ``queries.jsonl``) is indexed once in
``--home`` (incremental: a second run re-uses the index, the embedding cache makes a rebuild
cheap), then every query goes through ``Engine.search`` with ``--limit`` (10). Metrics by kind:

- ``doc``: chunk hit@1 / hit@10 (a result overlapping the gold definition), tokens per query
  (result characters / 4), as ``../shared/eval/score.py``;
- ``commit``: file MRR over the distinct files returned (``score.py``'s ``mrr``);
- ``agent``: NDCG@10 exactly as ``../shared/eval/agent_score.py`` (semble's benchmark): for each
  target (a file, or a line span of one) the rank of the first result covering it, binary gains,
  one gain per distinct rank, ideal DCG over min(10, targets in the corpus); per set and per
  category (architecture, semantic, symbol; pooled over the sets' queries).

Ranking knobs are config fields, so ``--set key=value`` tries one without re-indexing (chunking
knobs re-chunk, the embedding cache keeps it cheap). ``--split dev|held`` keeps a fixed half of
every set's queries (a hash of set name and query text), so a weight tuned on ``dev`` is judged on
``held``.

usage: python bench/retrieval.py [SET ...] --home DIR [--set key=value ...] [--split dev|held|all]
           [--limit 10] [--details FILE.jsonl] [--json OUT] [--kinds doc,commit,agent]
  SET defaults to every set under /work/eval (agent/*, git/*, click, express) when present.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import parse_overrides  # the --set key=value parser, shared with the quality runner

DEFAULT_ROOT = Path("/work/eval")


def default_sets(root: Path = DEFAULT_ROOT) -> list[Path]:
    found = sorted((root / "agent").glob("*/queries.jsonl")) + sorted((root / "git").glob("*/queries.jsonl"))
    found += [root / name / "queries.jsonl" for name in ("click", "express")]
    return [p.parent for p in found if p.is_file()]


SPLITS = ("dev", "held", "all")


def split_of(set_name: str, query: str) -> str:
    """A fixed half of the queries: the same on every run and machine."""
    digest = hashlib.blake2b(f"{set_name}\n{query}".encode(), digest_size=4).digest()
    return "dev" if digest[0] % 2 == 0 else "held"


# ---------------------------------------------------------------------------- metrics


def _same_path(a: str, b: str) -> bool:
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def _covers(res: dict, target: dict) -> bool:
    if not (_same_path(res["path"], target["orig"]) or _same_path(res["path"], target["path"])):
        return False
    if "start" not in target:
        return True
    return not (res["end"] < target["start"] or res["start"] > target["end"])


def ndcg(ranks: list[int], n_rel: int, k: int) -> float:
    if n_rel == 0:
        return 0.0
    gains = [0] * k
    for r in ranks:
        if 1 <= r <= k:
            gains[r - 1] = 1
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    return dcg / sum(1 / math.log2(i + 2) for i in range(min(k, n_rel)))


def score_query(q: dict, res: list[dict], k: int) -> dict:
    """The query's metrics; ``res`` holds dicts with path, start, end, chars."""
    res = res[:k]
    kind = q.get("kind", "doc")
    out: dict = {"tok": sum(r["chars"] for r in res) / 4}
    if kind == "agent":
        ranks = []
        for t in q["targets"]:
            r = next((i for i, x in enumerate(res, 1) if _covers(x, t)), None)
            if r is not None:
                ranks.append(r)
        n_rel = sum(1 for t in q["targets"] if t["in_corpus"])
        out.update(ndcg=ndcg(ranks, n_rel, k), ranks=ranks, n_rel=n_rel)
        return out
    files: list[str] = []
    for r in res:
        if r["path"] not in files:
            files.append(r["path"])
    gold = set(q["gold_files"])
    rank = next((i + 1 for i, f in enumerate(files) if f in gold), None)
    out["mrr"] = 1 / rank if rank else 0.0
    out["ranks"] = [rank] if rank else []
    if kind == "doc":
        g = q["gold"][0]
        hit = [
            i
            for i, r in enumerate(res)
            if r["path"] == g["path"] and r["start"] <= g["end"] and r["end"] >= g["start"]
        ]
        out["c@1"] = float(bool(hit and hit[0] == 0))
        out["c@10"] = float(bool(hit))
        out["ranks"] = [hit[0] + 1] if hit else []
    return out


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return round(statistics.mean(values), 4) if values else None


def summarize(rows: list[dict]) -> dict:
    """Per kind: doc c@1/c@10/tok, commit mrr/tok, agent ndcg/tok (+ categories)."""
    out: dict = {}
    for kind in ("doc", "commit", "agent"):
        part = [r for r in rows if r["kind"] == kind]
        if not part:
            continue
        keys = {"doc": ("c@1", "c@10", "mrr", "tok"), "commit": ("mrr", "tok"), "agent": ("ndcg", "tok")}[
            kind
        ]
        s = {key: _mean(part, key) for key in keys} | {"n": len(part)}
        if kind == "agent":
            cats: dict[str, list[dict]] = {}
            for r in part:
                cats.setdefault(r["category"], []).append(r)
            s["by_category"] = {c: _mean(v, "ndcg") for c, v in sorted(cats.items())}
        out[kind] = s
    return out


def query_row(name: str, q: dict, res: list[dict], k: int) -> dict:
    """One query's line of ``--details``: its metrics (``score_query``), results and gold. Also
    ``peer_semble.py``'s, so the two systems' details compare line by line."""
    return {
        "set": name,
        "kind": q.get("kind", "doc"),
        "category": q.get("category", ""),
        "split": split_of(name, q["q"]),
        "q": q["q"],
        **score_query(q, res, k),
        "top": [f"{r['path']}:{r['start']}-{r['end']}" for r in res],
        "gold": sorted({t["orig"] for t in q["targets"]}) if "targets" in q else q["gold_files"],
    }


def figures_by_split(rows: list[dict]) -> dict[str, dict[str, float]]:
    """``key_figures`` on each fixed half of the queries (``split_of``) and on all of them."""
    return {split: key_figures([r for r in rows if split in ("all", r["split"])]) for split in SPLITS}


# ---------------------------------------------------------------------------- running


def run_set(engine, set_dir: Path, limit: int, split: str, kinds: set[str]) -> tuple[dict, list[dict]]:
    corpus = (set_dir / "corpus").resolve()
    lines = (set_dir / "queries.jsonl").read_text().splitlines()
    queries = [json.loads(line) for line in lines if line.strip()]
    name = set_dir.name
    queries = [q for q in queries if q.get("kind", "doc") in kinds]
    if split != "all":
        queries = [q for q in queries if split_of(name, q["q"]) == split]
    t = time.perf_counter()
    report = engine.index(corpus)
    index_s = time.perf_counter() - t
    rows, lat = [], []
    for q in queries:
        t = time.perf_counter()
        resp = engine.search(corpus, q["q"], limit=limit)
        lat.append((time.perf_counter() - t) * 1000)
        res = [
            {"path": r.path, "start": r.start_line, "end": r.end_line, "chars": len(r.content)}
            for r in resp.results
        ]
        rows.append(query_row(name, q, res, limit))
    summary = {"set": name, "chunks": report.chunks_total, "index_s": round(index_s, 1)}
    summary["p50_ms"] = round(statistics.median(lat), 1) if lat else None
    summary |= summarize(rows)
    return summary, rows


def _fmt(v: float | None, width: int = 6) -> str:
    return f"{v:>{width}.3f}" if v is not None else " " * (width - 1) + "-"


def table(sets: list[dict], rows: list[dict]) -> str:
    cols = ("agent", "arch", "sem", "sym", "c@1", "c@10", "tok", "cmrr", "ms")
    head = f"{'set':<18} " + " ".join(f"{c:>6}" for c in cols)
    lines = [head, "-" * len(head)]
    for s in sets:
        a, d, c = s.get("agent", {}), s.get("doc", {}), s.get("commit", {})
        cat = a.get("by_category", {})
        tok = d.get("tok") if d else None
        lines.append(
            f"{s['set']:<18} {_fmt(a.get('ndcg'))} {_fmt(cat.get('architecture'))} "
            f"{_fmt(cat.get('semantic'))} {_fmt(cat.get('symbol'))} "
            f"{_fmt(d.get('c@1'))} {_fmt(d.get('c@10'))} "
            f"{'-' if tok is None else round(tok):>6} {_fmt(c.get('mrr'))} {s['p50_ms'] or 0:>6.1f}"
        )
    total = overall(sets, rows)
    lines.append("-" * len(head))
    lines.append(
        f"{'agent mean (sets)':<18} {_fmt(total.get('agent_mean'))}   categories (pooled queries): "
        + ", ".join(f"{c} {v:.3f}" for c, v in total.get("agent_categories", {}).items())
    )
    return "\n".join(lines)


def overall(sets: list[dict], rows: list[dict]) -> dict:
    agent = [s["agent"]["ndcg"] for s in sets if "agent" in s]
    out: dict = {}
    if agent:
        out["agent_mean"] = round(statistics.mean(agent), 4)
        cats: dict[str, list[float]] = {}
        for r in rows:
            if r["kind"] == "agent":
                cats.setdefault(r["category"], []).append(r["ndcg"])
        out["agent_categories"] = {c: round(statistics.mean(v), 4) for c, v in sorted(cats.items())}
    return out


def key_figures(rows: list[dict]) -> dict[str, float]:
    """The figures the issue judges, from per-query rows: agent mean over sets and per category
    (pooled), doc c@1 / c@10 / tok per doc set, commit MRR per set with commit queries."""
    out: dict[str, float] = {}
    by_set: dict[str, list[dict]] = {}
    for r in rows:
        by_set.setdefault(r["set"], []).append(r)
    agent = [
        statistics.mean(r["ndcg"] for r in rs if r["kind"] == "agent")
        for rs in by_set.values()
        if any(r["kind"] == "agent" for r in rs)
    ]
    if agent:
        out["agent"] = round(statistics.mean(agent), 4)
        cats: dict[str, list[float]] = {}
        for r in rows:
            if r["kind"] == "agent":
                cats.setdefault(r["category"], []).append(r["ndcg"])
        out |= {f"agent.{c}": round(statistics.mean(v), 4) for c, v in sorted(cats.items())}
    for name, rs in by_set.items():
        docs = [r for r in rs if r["kind"] == "doc"]
        commits = [r for r in rs if r["kind"] == "commit"]
        if docs:
            out[f"{name}.c@1"] = _mean(docs, "c@1")
            out[f"{name}.c@10"] = _mean(docs, "c@10")
            out[f"{name}.tok"] = round(statistics.mean(r["tok"] for r in docs))
        if commits:
            out[f"{name}.mrr"] = _mean(commits, "mrr")
    return out


def run_queries(engine, set_dir: Path, limit: int, kinds: set[str]) -> tuple[dict, list[dict]]:
    """``run_set`` over all of a set's queries (the split is applied when summarizing)."""
    return run_set(engine, set_dir, limit, "all", kinds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", type=Path)
    ap.add_argument("--home", type=Path, required=True, help="index home, re-used between runs")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--split", choices=["dev", "held", "all"], default="all")
    ap.add_argument("--kinds", default="doc,commit,agent")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--details", type=Path, help="per query JSON lines: ranks of the targets, top paths")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    os.environ["CLAUDE_CONTEXT_HOME"] = str(a.home)
    from claude_context.config import load_config
    from claude_context.engine import Engine

    overrides = parse_overrides(a.overrides)
    engine = Engine(load_config(**overrides))
    kinds = {k.strip() for k in a.kinds.split(",")}
    sets, rows = [], []
    try:
        for set_dir in a.sets or default_sets():
            summary, part = run_set(engine, set_dir, a.limit, a.split, kinds)
            sets.append(summary)
            rows.extend(part)
            print(json.dumps(summary), file=sys.stderr, flush=True)
    finally:
        engine.close()
    doc = {"overrides": overrides, "split": a.split, "limit": a.limit, "sets": sets} | overall(sets, rows)
    if a.details:
        a.details.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if a.json:
        a.json.write_text(json.dumps(doc, indent=1))
    print(table(sets, rows))


if __name__ == "__main__":
    main()
