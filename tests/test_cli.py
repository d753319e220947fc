"""The CLI as a user runs it: real subprocesses, real console script, stable --json output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RESULT_KEYS = {"path", "start_line", "end_line", "language", "symbol", "kind", "score", "content"}


def run(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("claude-context")
    cmd = [exe] if exe else [sys.executable, "-m", "claude_context.cli"]
    proc = subprocess.run(
        [*cmd, *args],
        env=dict(os.environ, CLAUDE_CONTEXT_HOME=str(home), COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess, needle: str, code: int = 1) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert needle in proc.stderr, proc.stderr


def test_index_search_status_list_clear(home, repo, warm_cache):
    shutil.copy(warm_cache, home / "embeddings.sqlite")
    rep = json.loads(run(home, "index", str(repo), "--json").stdout)
    assert rep["files_total"] > 10 and rep["chunks_total"] > rep["files_total"]
    assert rep["chunks_embedded"] == 0  # everything came from the warm cache

    out = json.loads(
        run(home, "search", str(repo), "parse a semantic version string", "--json", "-n", "3").stdout
    )
    assert {"root", "query", "mode", "results", "partial", "truncated", "took_ms"} <= set(out)
    assert out["mode"] == "hybrid" and 1 <= len(out["results"]) <= 3
    assert set(out["results"][0]) >= RESULT_KEYS
    assert out["results"][0]["path"] == "crates/semver/src/lib.rs"

    text = run(home, "search", str(repo), "parse a semantic version string", "-n", "2").stdout
    assert "crates/semver/src/lib.rs:" in text  # path:start-end, then numbered lines

    filtered = json.loads(run(home, "search", str(repo), "function", "--ext", ".go", "--json").stdout)
    assert filtered["results"] and all(r["path"].endswith(".go") for r in filtered["results"])

    st = json.loads(run(home, "status", str(repo), "--json").stdout)
    assert st["status"] == "indexed" and st["files"] == rep["files_total"]
    listed = json.loads(run(home, "list", "--json").stdout)
    assert [c["root"] for c in listed] == [str(repo.resolve())]
    assert "indexed" in run(home, "status").stdout

    run(home, "clear", str(repo))
    assert json.loads(run(home, "status", str(repo), "--json").stdout)["status"] == "not_indexed"


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (("index", "/definitely/not/here"), "does not exist", 1),
        (("search", "/definitely/not/here", "q"), "path does not exist", 1),
        (("search", "/", "q"), "not indexed", 1),
        (("index", "--bogus-flag", "."), "No such option", 2),
        (("search", ".", "q", "--limit", "0"), "Invalid value", 2),
    ],
)
def test_user_errors_are_one_line(home, args, needle, code):
    assert_one_line_error(run(home, *args, ok=False), needle, code)


def test_errors_on_indexed_codebase(home, repo, warm_cache):
    shutil.copy(warm_cache, home / "embeddings.sqlite")
    run(home, "index", str(repo), "--quiet")
    assert_one_line_error(run(home, "search", str(repo), "q", "--mode", "fuzzy", ok=False), "mode must be")
    assert_one_line_error(run(home, "index", str(repo / "app" / "slugs.py"), ok=False), "not a directory")
    assert_one_line_error(run(home, "search", str(repo), "   ", ok=False), "query is empty")


def test_bad_config_is_one_line(home):
    (home / "config.toml").write_text("max_chunk_chars = 'lots'\n")
    assert_one_line_error(run(home, "list", ok=False), "max_chunk_chars")
