"""The CLI's fast path and lazy imports: a running server answers `search`/`status`/`list` for the
CLI (real server subprocess, real CLI subprocesses), a stale endpoint is ignored, and commands that
need no model never import one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for

SERVE = (sys.executable, "-m", "claude_context.cli", "serve", "--transport", "http")
HEAVY = ("torch", "sentence_transformers", "onnxruntime", "transformers", "optimum", "model2vec")

# Runs the CLI exactly as the console script does, then reports which heavy modules it imported.
PROBE = """
import sys
sys.argv = ["claude-context", *sys.argv[1:]]
code = 0
try:
    from claude_context.cli import main
    main()
except SystemExit as exc:
    code = exc.code or 0
heavy = sorted(m for m in MODULES if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(code)
""".replace("MODULES", repr(HEAVY))


def cli(home: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=dict(os.environ, CLAUDE_CONTEXT_HOME=str(home), COLUMNS="200", **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY=")]
    assert line, proc.stderr
    heavy = [m for m in line[-1].removeprefix("HEAVY=").split(",") if m]
    return proc, heavy


@pytest.fixture
def indexed(engine, repo: Path, home: Path) -> Path:
    """``repo`` indexed in ``home`` (from the warm cache), the engine closed again."""
    engine.index(repo)
    engine.close()
    return repo


def test_model_free_commands_never_import_the_model(indexed: Path, home: Path) -> None:
    for args in (
        ("status",),
        ("status", str(indexed)),
        ("list", "--json"),
        ("search", str(indexed), "parse a semantic version string", "--mode", "keyword", "--json"),
        ("clear", str(indexed)),
    ):
        proc, heavy = cli(home, *args)
        assert proc.returncode == 0, proc.stderr
        assert heavy == [], f"{args} imported {heavy}"
    assert "not_indexed" in cli(home, "status", str(indexed), "--json")[0].stdout


def test_a_hybrid_search_without_a_server_loads_no_sentence_transformers(indexed: Path, home: Path) -> None:
    """The query vector comes from the ONNX export directly (``embedding/onnx_direct.py``): a
    one-shot search skips the 4-6 s import of sentence-transformers, transformers and torch."""
    proc, heavy = cli(home, "search", str(indexed), "parse a semantic version string", "--json", "-n", "3")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["path"] == "crates/semver/src/lib.rs"
    assert "onnxruntime" in heavy and not {"torch", "sentence_transformers", "transformers"} & set(heavy)
    assert "model2vec" not in heavy  # the static table is read directly (``static_direct``)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _strip(out: str) -> dict:
    data = json.loads(out)
    data.pop("took_ms", None)
    return data


def _serve(home: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A ``serve --transport http`` subprocess of ``home`` and the endpoint file it will write."""
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - the child owns it
    server = subprocess.Popen(
        [*SERVE, "--port", str(_free_port()), "--no-watch"],
        env=dict(os.environ, CLAUDE_CONTEXT_HOME=str(home)),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return server, home / "endpoints" / f"{server.pid}.json"


def test_cli_answers_through_a_running_server(indexed: Path, home: Path, tmp_path: Path) -> None:
    server, endpoint = _serve(home, tmp_path)
    try:
        wait_for(endpoint.exists, timeout=120, what="the server's endpoint file")
        assert endpoint.stat().st_mode & 0o077 == 0  # its token is the owner's only
        query = ("search", str(indexed), "parse a semantic version string", "--json", "-n", "3")
        served, heavy = cli(home, *query)
        assert served.returncode == 0, served.stderr
        assert heavy == []  # a hybrid search, yet no model in this process: the server answered
        local, heavy_local = cli(home, *query, CLAUDE_CONTEXT_FAST_PATH="0")
        assert "onnxruntime" in heavy_local or "torch" in heavy_local
        assert _strip(served.stdout) == _strip(local.stdout)
        assert json.loads(served.stdout)["results"][0]["path"] == "crates/semver/src/lib.rs"

        text, heavy = cli(home, "search", str(indexed / "crates"), "semantic version", "-n", "1")
        assert heavy == [] and "crates/semver/src/lib.rs:" in text.stdout  # a subfolder, text form
        status, heavy = cli(home, "status", str(indexed), "--json")
        assert heavy == [] and json.loads(status.stdout)["status"] == "indexed"
        listed, _ = cli(home, "list", "--json")
        assert [c["root"] for c in json.loads(listed.stdout)] == [str(indexed.resolve())]

        # the engine's errors come back as the CLI's own: one line, same exit code
        missing, heavy = cli(home, "search", str(tmp_path / "elsewhere"), "q")
        assert missing.returncode == 1 and "path does not exist" in missing.stderr and heavy == []
        (tmp_path / "elsewhere").mkdir()
        missing, heavy = cli(home, "search", str(tmp_path / "elsewhere"), "q")
        assert missing.returncode == 1 and "not indexed" in missing.stderr and heavy == []
        # what the fast parser does not take goes to typer, with typer's checks
        bad, _ = cli(home, "search", str(indexed), "q", "--limit", "0")
        assert bad.returncode == 2 and "Invalid value" in bad.stderr
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert not endpoint.exists()  # withdrawn on a clean stop


def test_sigterm_withdraws_the_endpoint(home: Path, tmp_path: Path) -> None:
    """``kill`` (SIGTERM) stops an HTTP server through its normal shutdown: the endpoint file goes."""
    server, endpoint = _serve(home, tmp_path)
    try:
        wait_for(endpoint.exists, timeout=120, what="the server's endpoint file")
        server.send_signal(signal.SIGTERM)
        code = server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert code in (0, 128 + signal.SIGTERM), (tmp_path / "serve.log").read_text()  # not killed by it
    assert not endpoint.exists()


def test_stale_endpoints_are_ignored(indexed: Path, home: Path) -> None:
    folder = home / "endpoints"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    info = {"port": _free_port(), "token": "x", "started": 0.0}
    (folder / f"{dead.pid}.json").write_text(json.dumps({**info, "pid": dead.pid}))
    (folder / "live.json").write_text(json.dumps({**info, "pid": os.getpid()}))  # alive, not listening
    (folder / "junk.json").write_text("{not json")
    proc, _ = cli(home, "search", str(indexed), "semantic version", "--mode", "keyword", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"]
    assert not (folder / f"{dead.pid}.json").exists()  # a dead process's file is removed


def test_fast_parser_options_exist_in_the_typer_commands() -> None:
    import typer.main

    from claude_context.cli import app
    from claude_context.cli.fast import COMMANDS, parser

    group = typer.main.get_command(app)
    for name in COMMANDS:
        real = {opt for p in group.commands[name].params for opt in getattr(p, "opts", [])}
        fast = {opt for a in parser(name)._actions for opt in a.option_strings}
        assert fast <= real, f"{name}: {fast - real}"
