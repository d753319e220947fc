"""Fit the query adapter shipped in claude_context/data (see claude_context/search/query_adapter.py).

usage: python bench/train_adapter.py SET [SET ...] --home H [--out FILE] [--json]

Each SET is a folder in the eval format (corpus/ + queries.jsonl), as bench/build_adapter_sets.sh
makes them from published packages that none of the eval sets use. Every corpus is indexed with
the default settings in home H (embedded once, cached there), then an affine map ``W q + b`` on
the query vectors (identity at the start) is fitted by full-batch Adam to maximize the softmax
probability of a query's gold chunk over *all* chunks of its corpus (temperature ``--tau``), with
an L2 pull toward the identity (``--lam``) so the map stays a small correction. Chunk vectors are
the index's own (the default backend's), so the map is fitted to exactly what search compares.

Prints, per set, the dense chunk hit@1 / hit@10 (exact search over the corpus) before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def collect(engine, set_dir: Path) -> dict:
    """(query vectors, chunk vectors, gold chunk rows) of one set, from the engine's own index."""
    from quality import load_set

    corpus, queries = load_set(set_dir)
    engine.index(corpus)
    store = engine.resolve(corpus)[0].store
    rows = [
        (sc.chunk.path, sc.chunk.start_line, sc.chunk.end_line, sc.embed_key)
        for batch in store.meta.iter_chunks()
        for sc in batch
    ]
    vectors = engine.cache.get_many(store.model_id, [r[3] for r in rows])
    rows = [r for r in rows if r[3] in vectors]
    embedder = engine.embedder()
    qs, gold = [], []
    for q in queries:
        if q.get("kind") != "doc" or not q.get("gold"):
            continue
        g = q["gold"][0]
        pos = [i for i, r in enumerate(rows) if r[0] == g["path"] and r[1] <= g["end"] and r[2] >= g["start"]]
        if pos:
            qs.append(embedder.embed_query(q["q"]))  # the raw model vector, no adapter
            gold.append(pos)
    return {
        "D": np.stack([vectors[r[3]] for r in rows]).astype(np.float32),
        "Q": np.stack(qs).astype(np.float32),
        "P": gold,
    }


def hits(W: np.ndarray, b: np.ndarray, s: dict) -> tuple[float, float]:
    q = s["Q"] @ W.T + b
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    top = np.argsort(-(q @ s["D"].T), axis=1)[:, :10]
    h1 = np.mean([top[i, 0] in p for i, p in enumerate(s["P"])])
    h10 = np.mean([bool(set(top[i]) & set(p)) for i, p in enumerate(s["P"])])
    return round(float(h1), 3), round(float(h10), 3)


def fit(
    sets: dict[str, dict], lam: float, tau: float, epochs: int, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    import torch

    torch.manual_seed(0)
    data = []
    for s in sets.values():
        D, Q = torch.tensor(s["D"]), torch.tensor(s["Q"])
        mask = torch.zeros(len(s["P"]), D.shape[0], dtype=torch.bool)
        for i, p in enumerate(s["P"]):
            mask[i, p] = True
        data.append((D, Q, mask))
    dim = data[0][0].shape[1]
    eye = torch.eye(dim)
    W = eye.clone().requires_grad_(True)
    b = torch.zeros(dim, requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=lr)
    for _ in range(epochs):
        opt.zero_grad()
        loss = lam * (((W - eye) ** 2).sum() + (b**2).sum())
        for D, Q, mask in data:  # each corpus weighs the same, whatever its query count
            logits = torch.nn.functional.normalize(Q @ W.T + b, dim=1) @ D.T / tau
            nll = torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~mask, -1e9), 1)
            loss = loss + nll.mean() / len(data)
        loss.backward()
        opt.step()
    return W.detach().numpy().astype(np.float32), b.detach().numpy().astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sets", nargs="+", type=Path)
    ap.add_argument("--home", type=Path, required=True, help="index home for the training corpora")
    ap.add_argument("--out", type=Path, default=Path("claude_context/data/query_adapter_minilm_l6.npz"))
    ap.add_argument("--lam", type=float, default=1.0)
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ["CLAUDE_CONTEXT_HOME"] = str(args.home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from claude_context.config import load_config
    from claude_context.engine import Engine

    engine = Engine(load_config())
    t0 = time.perf_counter()
    sets = {d.name: collect(engine, d) for d in args.sets}
    model = engine.embedder().model_name
    engine.close()
    t1 = time.perf_counter()
    W, b = fit(sets, args.lam, args.tau, args.epochs, args.lr)
    eye, zero = np.eye(W.shape[0], dtype=np.float32), np.zeros(W.shape[0], dtype=np.float32)
    report = {
        "model": model,
        "sets": {
            k: {
                "queries": len(s["P"]),
                "chunks": len(s["D"]),
                "before": hits(eye, zero, s),
                "after": hits(W, b, s),
            }
            for k, s in sets.items()
        },
        "collect_s": round(t1 - t0, 1),
        "fit_s": round(time.perf_counter() - t1, 1),
    }
    info = {
        "model": model,
        "lam": args.lam,
        "tau": args.tau,
        "epochs": args.epochs,
        "lr": args.lr,
        "sets": sorted(sets),
        "queries": sum(len(s["P"]) for s in sets.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, W=W, b=b, info=np.array(json.dumps(info)))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for k, r in report["sets"].items():
            print(
                f"{k:28} {r['queries']:4} q {r['chunks']:6} chunks  hit@1/@10 {r['before']} -> {r['after']}"
            )
        print(f"wrote {args.out} ({report['collect_s']} s collecting, {report['fit_s']} s fitting)")


if __name__ == "__main__":
    main()
