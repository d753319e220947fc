#!/usr/bin/env python3
"""Whole-process wall time of one-shot CLI commands, with and without a running server.

A fresh home indexes CORPUS (default: the polyglot test fixture), then each command runs as a new
``claude-context`` process, ``--runs`` times (p50 / p95 / min of wall time, the interpreter start
included, and the p50 CPU time, which machine load does not inflate):
- no server: ``status PATH``, ``list``, ``search --mode keyword`` (no model import), ``search``
  (hybrid: imports and loads the model in the process);
- with ``claude-context serve --transport http --no-watch`` of the same home running (the CLI's fast
  path: ``claude_context/fastpath.py``): ``search``, ``status PATH``, ``list``.

usage: python bench/cli_bench.py [--corpus DIR] [--runs 15] [--query "..."] [--out FILE]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "polyglot"


def exe() -> list[str]:
    found = shutil.which("claude-context")
    return [found] if found else [sys.executable, "-m", "claude_context.cli"]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(env: dict, args: list[str], runs: int, cmd: list[str] | None = None) -> dict:
    """Wall time of ``runs`` new processes, and their CPU time (user + sys): on a loaded machine
    the wall time is mostly waiting for a core, the CPU time is what the command costs."""
    walls, cpus = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), _cpu()
        proc = subprocess.run([*(cmd or exe()), *args], env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
        if proc.returncode != 0:
            raise SystemExit(f"{args} failed: {proc.stderr}")
    walls.sort()
    return {
        "p50_ms": round(1000 * statistics.median(walls)),
        "p95_ms": round(1000 * walls[int(0.95 * (len(walls) - 1))]),
        "min_ms": round(1000 * walls[0]),
        "cpu_p50_ms": round(1000 * statistics.median(cpus)),
        "runs": runs,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=FIXTURE)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--query", default="parse a semantic version string")
    ap.add_argument("--out")
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="cc-cli-bench-")
    env = dict(os.environ, CLAUDE_CONTEXT_HOME=home)
    corpus = str(a.corpus.resolve())
    subprocess.run([*exe(), "index", corpus, "--quiet"], env=env, check=True, capture_output=True)
    search = ["search", corpus, a.query]
    report: dict = {"corpus": corpus, "cores": os.cpu_count(), "loadavg_start": os.getloadavg()[0]}
    # the floor: a bare interpreter start, measured the same way
    report["python_startup"] = timed(env, ["-c", "pass"], a.runs, cmd=[sys.executable])
    report["no_server"] = {
        "status": timed(env, ["status", corpus], a.runs),
        "list": timed(env, ["list"], a.runs),
        "search_keyword": timed(env, [*search, "--mode", "keyword"], a.runs),
        "search_hybrid": timed(env, search, max(3, a.runs // 5)),
    }
    server = subprocess.Popen(
        [*exe(), "serve", "--transport", "http", "--port", str(free_port()), "--no-watch"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (Path(home) / "endpoints" / f"{server.pid}.json").exists():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        subprocess.run([*exe(), *search], env=env, check=True, capture_output=True)  # its model is warm
        report["with_server"] = {
            "search_hybrid": timed(env, search, a.runs),
            "search_keyword": timed(env, [*search, "--mode", "keyword"], a.runs),
            "status": timed(env, ["status", corpus], a.runs),
            "list": timed(env, ["list"], a.runs),
        }
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(home, ignore_errors=True)
    report["loadavg_end"] = os.getloadavg()[0]
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
