#!/usr/bin/env python3
"""Time to quality on a cold index: how good are the answers 2, 5, 10, 30 s after indexing starts?

For each agent set (``SET/corpus`` + ``SET/queries.jsonl``, e.g. /work/eval/agent/*) on a fresh
``CLAUDE_CONTEXT_HOME``: the engine starts indexing in a background job, in this process (exactly
what the MCP server's ``index_codebase`` does: ``Engine.start_index``; the server answers
``search_code`` with ``Engine.search`` in the same process, so searches compete with indexing for
the cores as they do there). At each checkpoint every query of the set is asked with the shipped
defaults (``limit`` 10, the default mode) and scored; once more when indexing completes.

Metric: NDCG@10 exactly as ``shared/eval/agent_score.py`` scores it (semble's benchmark: binary
gains per target file or span, first covering rank, ideal DCG over min(10, targets in corpus)),
through ``bench/retrieval.py``'s ``score_query``. A doc set (``kind: doc`` queries, e.g. built from
the transformers source with ``shared/eval/make_queries.py SRC OUT --docs 100``) is scored by
chunk hit@10 instead, reported under the same key.

usage: python bench/ttq_bench.py [SET_DIR ...] [--checkpoints 2,5,10,30] [--cold-models]
           [--also keyword] [--static on|off] [--model-cache DIR] [--out FILE.json] [--details FILE.jsonl]
  SET_DIR        default: every set in /work/eval/agent (or $CC_AGENT_SETS)
  --no-done      stop indexing after the last checkpoint (the early curve only, minutes faster)
  --also MODES   also ask in these modes at each checkpoint (e.g. keyword: what keywords alone give)
  --cold-models  a fresh model cache per set too (each set pays the one-time ONNX export, as the
                 very first index of a new machine does); default: one model cache shared by the
                 sets, built before the first (its build time is reported as export_s)
  --static on|off  the static embedding table for chunks still without a vector (config
                 ``static_embeddings``; default on). On: the shared model cache gets the table built
                 before the first set too (its build time: static_s)
  --model-cache DIR  the shared model cache to use (and keep): a second run skips both builds
Prints one JSON object: per set the curve (t, when the batch ran, NDCG@10, semantic coverage,
files keyword-searchable), the mean curve over sets, and each set's index time.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import retrieval

DEFAULT_SETS = Path(os.environ.get("CC_AGENT_SETS", "/work/eval/agent"))


# -- scoring: bench/retrieval.py's (shared/eval/agent_score.py's metric, semble's benchmark) ------
def score(qs: list[dict], results: list[list[dict]], k: int = 10) -> tuple[float, list[dict]]:
    """Mean quality: NDCG@10 for agent questions; chunk hit@10 for doc queries (a set made with
    ``shared/eval/make_queries.py``, e.g. from the transformers source)."""
    per = []
    for q, res in zip(qs, results, strict=True):
        m = retrieval.score_query(q, res, k)
        if "ndcg" in m:
            per.append({"q": q["q"], "category": q["category"], "ndcg": m["ndcg"], "ranks": m["ranks"]})
        else:
            per.append({"q": q["q"], "category": q.get("kind", "doc"), "ndcg": m["c@10"], "c@1": m["c@1"]})
    return statistics.mean(p["ndcg"] for p in per), per


# -- the run ---------------------------------------------------------------------------------------
def ask_all(engine, root: Path, qs: list[dict], mode: str | None) -> list[list[dict]]:
    from claude_context.errors import ClaudeContextError

    out = []
    for q in qs:
        try:
            resp = engine.search(root, q["q"], limit=10, mode=mode)
            out.append(
                [
                    {"path": r.path, "start": r.start_line, "end": r.end_line, "chars": len(r.content)}
                    for r in resp.results
                ]
            )
        except ClaudeContextError:  # not indexed yet: no answer
            out.append([])
    return out


def run_set(
    set_dir: Path,
    checkpoints: list[float],
    model_cache: str,
    details,
    modes: list[str | None],
    until_done: bool = True,
) -> dict:
    from claude_context.config import load_config
    from claude_context.engine import Engine

    root = (set_dir / "corpus").resolve()
    qs = [json.loads(line) for line in (set_dir / "queries.jsonl").read_text().splitlines() if line]
    home = tempfile.mkdtemp(prefix=f"cc-ttq-{set_dir.name}-")
    engine = Engine(
        load_config(
            env={**os.environ, "CLAUDE_CONTEXT_HOME": home, "CLAUDE_CONTEXT_MODEL_CACHE": model_cache}
        )
    )
    curve = []
    t0 = time.perf_counter()
    job, _ = engine.start_index(root)

    def checkpoint(label: float | str) -> None:
        started = time.perf_counter() - t0
        st = engine.status(root)
        point: dict = {"t": label, "asked_s": round(started, 2)}
        for mode in modes:
            mean, per = score(qs, ask_all(engine, root, qs, mode))
            point["ndcg@10" if mode is None else f"ndcg@10_{mode}"] = round(mean, 4)
            if details is not None:
                for p in per:
                    details.write(json.dumps({"set": set_dir.name, "t": label, "mode": mode, **p}) + "\n")
        point.update(
            answered_s=round(time.perf_counter() - t0, 2),
            status=st.status,
            semantic_coverage=st.semantic_coverage,
            chunks=st.chunks,
        )
        curve.append(point)
        print(json.dumps({"set": set_dir.name, **point}), file=sys.stderr, flush=True)

    for t in checkpoints:
        time.sleep(max(0.0, t - (time.perf_counter() - t0)))
        checkpoint(t)
    if not until_done:  # the early curve only: stop the run (engine.close cancels the job)
        engine.close()
        return {"set": set_dir.name, "queries": len(qs), "index_s": None, "curve": curve}
    job.thread.join()
    index_s = round(time.perf_counter() - t0, 2)
    if job.error is not None:
        raise job.error
    checkpoint("done")
    engine.close()
    return {"set": set_dir.name, "queries": len(qs), "index_s": index_s, "curve": curve}


def prepare_models(model_cache: str) -> tuple[float, float | None]:
    """Build the ONNX export (and the static table when it is on) once, as the first index of a
    new machine does: (export seconds, static table seconds or None)."""
    from claude_context.config import load_config
    from claude_context.embedding.static import wait_for_build
    from claude_context.engine import Engine

    home = tempfile.mkdtemp(prefix="cc-ttq-models-")
    t0 = time.perf_counter()
    engine = Engine(
        load_config(
            env={**os.environ, "CLAUDE_CONTEXT_HOME": home, "CLAUDE_CONTEXT_MODEL_CACHE": model_cache}
        )
    )
    engine.warm_up()
    engine.close()
    export_s = round(time.perf_counter() - t0, 2)
    if not engine.config.static_embeddings:
        return export_s, None
    t0 = time.perf_counter()
    table = wait_for_build(Path(model_cache), engine.config.model, 1800)
    if table is None:
        print("static table: not built (model2vec missing or the build failed)", file=sys.stderr)
    return export_s, round(time.perf_counter() - t0, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", type=Path)
    ap.add_argument("--checkpoints", default="2,5,10,30")
    ap.add_argument("--cold-models", action="store_true")
    ap.add_argument(
        "--also", default="", help="extra modes asked at each checkpoint, e.g. keyword (default: none)"
    )
    ap.add_argument("--no-done", action="store_true", help="stop each run after the last checkpoint")
    ap.add_argument("--static", choices=["on", "off"], default="on")
    ap.add_argument("--model-cache", help="shared model cache (kept; default: a temporary folder)")
    ap.add_argument("--out")
    ap.add_argument("--details")
    a = ap.parse_args()
    sets = a.sets or sorted(p for p in DEFAULT_SETS.iterdir() if (p / "queries.jsonl").is_file())
    checkpoints = [float(x) for x in a.checkpoints.split(",") if x.strip()]
    modes: list[str | None] = [None, *(m.strip() for m in a.also.split(",") if m.strip())]
    details = open(a.details, "a") if a.details else None  # noqa: SIM115
    os.environ["CLAUDE_CONTEXT_STATIC_EMBEDDINGS"] = "1" if a.static == "on" else "0"
    report: dict = {"checkpoints_s": checkpoints, "cold_models": a.cold_models, "static": a.static}
    report["sets"] = []
    shared = a.model_cache or tempfile.mkdtemp(prefix="cc-ttq-model-cache-")
    if not a.cold_models:
        report["export_s"], report["static_s"] = prepare_models(shared)
    for set_dir in sets:
        cache = tempfile.mkdtemp(prefix="cc-ttq-model-cache-") if a.cold_models else shared
        report["sets"].append(run_set(set_dir, checkpoints, cache, details, modes, not a.no_done))
    labels = [*checkpoints] if a.no_done else [*checkpoints, "done"]
    report["mean"] = {
        str(label): round(
            statistics.mean(
                next(p["ndcg@10"] for p in s["curve"] if p["t"] == label) for s in report["sets"]
            ),
            4,
        )
        for label in labels
    }
    report["index_s"] = {s["set"]: s["index_s"] for s in report["sets"]}
    report["by_set"] = {s["set"]: {str(p["t"]): p["ndcg@10"] for p in s["curve"]} for s in report["sets"]}
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
