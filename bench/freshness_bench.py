#!/usr/bin/env python3
"""Freshness benchmark: how soon a saved file is searchable, what reconciling an unchanged tree
costs, and what a branch switch re-embeds.

On an already indexed corpus (default: the transformers corpus of bench/index_bench.py, in a copy
of its home so the original is never written):

* ``save_to_searchable``: a real watcher (``WatchService``, default debounce) runs; each of
  ``--edits`` saves appends a function with a unique name to a random file; the clock runs from
  the write until a keyword search returns that symbol; ``complete`` runs until the file's row is
  back (its vectors are in too: progressive availability). Median and p95. Afterwards a default
  (hybrid) search for the name is checked too (``found_by_hybrid_top10``).
* ``noop_reconcile``: ``Engine.update(root)`` on the unchanged tree, the start-up reconciliation
  (stat-level walk + diff with the files table): the first one in a fresh engine, then a median;
  ``noop_index_s`` is a full ``Engine.index`` no-op for comparison (it ends with a durable save).
* ``branch_switch``: ``--switch-files`` files rewritten as on another branch (a line inserted near
  the top, one function added), applied by the watcher, then switched back, then forth again:
  chunks embedded per switch (a branch seen before embeds nothing).
* ``durable_save_s``: the deferred vector-index save that updates skip.

usage: python bench/freshness_bench.py --json [--home DIR] [--source-home DIR] [--corpus DIR]
           [--edits 20] [--switch-files 50] [--seed 7]
  --source-home DIR  an index home to copy into --home first (only if --home does not exist yet),
                     with the corpus copied beside it and the index re-rooted onto the copy
  --corpus DIR       the codebase to use (default: the only codebase in --home); indexed first if
                     it is not yet
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _names(hit, name: str) -> bool:
    """Whether a result names ``name`` (a merged result lists every symbol it spans)."""
    return any(s.split(".")[-1] == name for s in hit.symbol.split(", "))


def _load() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2), "load15": round(fifteen, 2)}


def prepare_home(source: Path, home: Path) -> None:
    """Copy an index home (mtimes kept, so the stat diff sees an unchanged tree) and re-root its
    codebase onto a copy of the corpus inside the new home (the original is never written)."""
    from claude_context.index.truth.metadata import MetadataStore
    from claude_context.index.truth.store import codebase_folder

    shutil.copytree(source, home, copy_function=shutil.copy2, symlinks=True)
    for meta_path in sorted((home / "codebases").glob("*/index.sqlite")):
        meta = MetadataStore(meta_path)
        old_root = Path(meta.get_meta("root") or "")
        meta.close()
        try:
            rel = old_root.relative_to(source)
            new_root = home / rel  # the corpus lived inside the source home: already copied
        except ValueError:
            new_root = home / "corpus" / old_root.name
            shutil.copytree(old_root, new_root, copy_function=shutil.copy2, symlinks=True)
        new_root = new_root.resolve()
        folder = codebase_folder(home / "codebases", new_root)
        if meta_path.parent != folder:
            meta_path.parent.rename(folder)
        meta = MetadataStore(folder / "index.sqlite")
        meta.set_meta(root=str(new_root))
        meta.close()


def the_root(engine, corpus: str | None) -> Path:
    if corpus:
        root = Path(corpus).resolve()
        if engine.status(root).status == "not_indexed":
            print(f"indexing {root} first ...", file=sys.stderr)
            engine.index(root)
        return root
    roots = engine.indexed_roots()
    if len(roots) != 1:
        sys.exit(f"--home holds {len(roots)} codebases: pass --corpus")
    return roots[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object (default: also JSON)")
    ap.add_argument("--home", default=None, help="scratch home (default: a new temporary folder)")
    ap.add_argument(
        "--source-home",
        default=os.environ.get("CLAUDE_CONTEXT_HOME", str(Path("~/.claude-context").expanduser())),
        help="index home to copy from (default: CLAUDE_CONTEXT_HOME or ~/.claude-context)",
    )
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--switch-files", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--debounce", type=float, default=None, help="watcher debounce (default: config)")
    a = ap.parse_args()

    home = Path(a.home).resolve() if a.home else Path(tempfile.mkdtemp(prefix="cc-fresh-")) / "home"
    if not home.exists():
        if not Path(a.source_home).exists():
            sys.exit(f"neither {home} nor --source-home {a.source_home} exists")
        print(f"copying {a.source_home} -> {home} ...", file=sys.stderr)
        prepare_home(Path(a.source_home), home)
    os.environ["CLAUDE_CONTEXT_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from claude_context.config import load_config
    from claude_context.discovery import discover
    from claude_context.engine import Engine
    from claude_context.watcher import WatchService

    cfg = load_config()
    out: dict[str, object] = {"load_at_start": _load(), "cores": os.cpu_count()}

    # -- no-op reconciliation (a fresh engine: what a server start pays) -------------------------
    engine = Engine(cfg)
    root = the_root(engine, a.corpus)
    backend = engine.status(root).backend
    if backend and backend != cfg.backend:  # full index runs must not switch (and re-embed) it
        engine.close()
        cfg = cfg.replace(backend=backend)
        engine = Engine(cfg)
    t0 = time.perf_counter()
    first = engine.update(root)
    first_s = time.perf_counter() - t0
    if first.applied:  # the tree had moved since it was indexed: measure the no-op afterwards
        out["initial_reconcile"] = first.to_dict()
        t0 = time.perf_counter()
        engine.update(root)
        first_s = time.perf_counter() - t0
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        r = engine.update(root)
        runs.append(time.perf_counter() - t0)
        assert not r.applied, r
    st = engine.status(root)
    out["corpus"] = {"root": str(root), "files": st.files, "chunks": st.chunks, "model": st.model,
                     "backend": st.backend, "vector_index": st.index.get("vector_index")}  # fmt: skip
    walk_t0 = time.perf_counter()
    n_walk = sum(1 for _ in discover(root))
    out["noop_reconcile"] = {
        "first_in_fresh_engine_s": round(first_s, 3),
        "median_s": round(statistics.median(runs), 3),
        "max_s": round(max(runs), 3),
        "stat_walk_only_s": round(time.perf_counter() - walk_t0, 3),
        "files_walked": n_walk,
    }
    t0 = time.perf_counter()
    engine.index(root)
    out["noop_index_s"] = round(time.perf_counter() - t0, 3)

    # -- save to searchable ------------------------------------------------------------------------
    engine.warm_up()
    engine.search(root, "warm up the index", limit=3)  # open the derived index once
    rng = random.Random(a.seed)
    py_files = sorted(p for p in (e.abs_path for e in discover(root)) if p.suffix == ".py")
    reports: list = []
    svc_kw = {} if a.debounce is None else {"debounce": a.debounce}
    svc = WatchService(engine, [root], on_update=lambda _r, rep: reports.append(rep), **svc_kw).start()
    assert svc.wait_idle(600), "initial reconcile did not finish"
    watch = svc.get(root)
    assert watch is not None and watch.state == "watching", (watch.state, watch.message)
    originals: dict[Path, str] = {}
    searchable, complete, update_ms = [], [], []
    hybrid_found = 0
    store = engine.resolve(root)[0].store
    for i, path in enumerate(rng.sample(py_files, a.edits)):
        # an identifier sharing no token with the corpus or the other probes, so finding it measures
        # freshness, not ranking (near-identical probes make fusion order them arbitrarily)
        name = "_".join("".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(7)) for _ in range(2))
        text = originals.setdefault(path, path.read_text(encoding="utf-8"))
        rel = path.relative_to(root).as_posix()
        n_reports = len(reports)
        doc = f"Scale the reading by {i + 2}."
        body = f'\n\ndef {name}(value):\n    """{doc}"""\n    return value * {i + 2}\n'
        t0 = time.perf_counter()
        path.write_text(text + body, encoding="utf-8")
        while True:  # keyword search: the new code is in the index and retrievable
            hits = engine.search(root, name, limit=5, mode="keyword").results
            if any(_names(h, name) for h in hits):
                break
            if time.perf_counter() - t0 > 120:
                raise SystemExit(f"edit {i} not searchable after 120 s")
            time.sleep(0.01)
        searchable.append(time.perf_counter() - t0)
        while True:
            state = store.meta.file_states().get(rel)
            if state is not None and state.size == path.stat().st_size:
                break
            time.sleep(0.01)
        complete.append(time.perf_counter() - t0)
        hits = engine.search(root, name, limit=10).results  # the default (hybrid) search agrees
        hybrid_found += any(_names(h, name) for h in hits)
        svc.wait_idle(120)
        update_ms.extend(r.seconds * 1000 for r in reports[n_reports:])
        time.sleep(0.3)
    out["save_to_searchable"] = {
        "edits": a.edits,
        "median_s": round(statistics.median(searchable), 3),
        "p95_s": round(_pct(searchable, 0.95), 3),
        "max_s": round(max(searchable), 3),
        "complete_median_s": round(statistics.median(complete), 3),
        "complete_p95_s": round(_pct(complete, 0.95), 3),
        "update_ms_median": round(statistics.median(update_ms), 1) if update_ms else None,
        "found_by_hybrid_top10": hybrid_found,
        "debounce_s": svc.debounce,
        "all_s": [round(x, 3) for x in searchable],
    }
    for path, text in originals.items():  # put the corpus back (applied by the watcher)
        path.write_text(text, encoding="utf-8")
    time.sleep(1.0)
    svc.wait_idle(300)

    # -- branch switch ----------------------------------------------------------------------------
    chosen = rng.sample(py_files, a.switch_files)
    branch_a = {p: p.read_text(encoding="utf-8") for p in chosen}
    branch_b = {}
    for i, (p, text) in enumerate(branch_a.items()):
        lines = text.split("\n")
        cut = min(len(lines), 3)
        lines.insert(cut, f"# branch-b edit {i}")
        extra = f'\n\ndef branch_b_helper_{i}(x):\n    """Branch B only."""\n    return x\n'
        branch_b[p] = "\n".join(lines) + extra

    def switch(contents: dict[Path, str], label: str) -> dict[str, object]:
        n = len(reports)
        t0 = time.perf_counter()
        for p, text in contents.items():
            p.write_text(text, encoding="utf-8")
        time.sleep(0.5)
        assert svc.wait_idle(1800)
        mine = reports[n:]
        return {
            "switch": label,
            "files": len(contents),
            "updates": len(mine),
            "files_changed": sum(r.files_changed for r in mine),
            "chunks_written": sum(r.chunks_written for r in mine),
            "chunks_embedded": sum(r.chunks_embedded for r in mine),
            "seconds": round(time.perf_counter() - t0, 2),
        }

    out["branch_switch"] = [
        switch(branch_b, "a->b (new branch)"),
        switch(branch_a, "b->a (seen before)"),
        switch(branch_b, "a->b (seen before)"),
        switch(branch_a, "b->a (seen before)"),
    ]

    # -- the deferred durable save ---------------------------------------------------------------
    t0 = time.perf_counter()
    saved = engine.flush(root)
    out["durable_save_s"] = round(time.perf_counter() - t0, 3) if saved else None
    out["watch_stats"] = {k: getattr(watch.stats, k) for k in watch.stats.__slots__}
    svc.stop()
    engine.close()
    out["load_at_end"] = _load()
    print(json.dumps(out, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
