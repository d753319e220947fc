"""A writer killed with SIGKILL mid-index leaves a usable index that the next run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()


def _make_repo(root: Path, n: int) -> None:
    for i in range(n):
        a, b = WORDS[i % len(WORDS)], WORDS[(i * 7 + 3) % len(WORDS)]
        (root / f"mod_{i:03d}.py").write_text(
            f'"""Module {i}."""\n\n\ndef {a}_{b}_{i}(value):\n'
            f'    """Combine {a} and {b} readings number {i}."""\n    return value * {i} + {len(a)}\n'
        )


def test_kill_during_indexing_then_recover(tmp_path, home, model):
    repo = tmp_path / "big"
    repo.mkdir()
    _make_repo(repo, 700)
    env = dict(os.environ, CLAUDE_CONTEXT_HOME=str(home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_context.cli", "index", str(repo), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    from claude_context.config import load_config
    from claude_context.engine import Engine

    engine = Engine(load_config())
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # wait until some batches are committed, then kill
            st = engine.status(repo) if engine.list_codebases() else None
            if st is not None and st.files >= 200:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

        st = engine.status(repo)
        assert st.status == "failed" and "interrupted" in st.error
        partial_files = st.files
        assert 0 < partial_files < 700
        # the committed part is searchable right away, in both retrievers
        assert engine.search(repo, "alpha_bravo", mode="keyword").results
        assert engine.search(repo, "combine readings", mode="semantic").results

        report = engine.index(repo)  # the lock died with the process: no wedge
        assert report.files_total == 700
        assert report.files_changed == 700 - partial_files  # resumed, not restarted
        store = engine.resolve(repo)[0].store
        assert set(store.meta.file_states()) == {p.name for p in repo.iterdir()}
        vec_ids, kw_ids = store.chunk_index().ids()
        assert vec_ids == kw_ids == store.meta.chunk_ids()
        assert engine.status(repo).status == "indexed"
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.close()
