"""Hostile input through the official MCP client, over stdio and streamable HTTP (issue 17).

Every bad call must fail as a tool error whose text names its cause (not the SDK's bare "Error
executing tool X"), nothing is indexed by it, replies stay small whatever the input size, and the
protocol surface is honest: only offered capabilities advertised, valid JSON-RPC error codes, the
server's own loopback address accepted by its Host check, and a prompt exit when stdin closes.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from test_mcp import PROBE, SERVE, _env, fails, free_port, generate_repo, ok, run, stdio_session, text

POLYGLOT = Path(__file__).parent / "fixtures" / "polyglot"

BIG = 10 * 1024 * 1024  # 10 MB: the size of query that once became a 21 MB reply
MAX_REPLY = 2000  # characters an error about a huge argument may take


@pytest.fixture(scope="module")
def mcp_home(tmp_path_factory: pytest.TempPathFactory, warm_cache: Path) -> Path:
    home = tmp_path_factory.mktemp("bad-input-home")
    shutil.copy(warm_cache, home / "embeddings.sqlite")
    return home


@pytest.fixture(scope="module")
def mcp_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("bad-input-repo") / "polyglot"
    shutil.copytree(POLYGLOT, dst, ignore=shutil.ignore_patterns("EXPECTED.json"))
    (dst / "app" / "airship.py").write_text(PROBE)
    return dst


def _bad_calls(repo: str, tmp: str) -> list[tuple[str, dict[str, Any], str]]:
    """(tool, arguments, text the error must contain)."""
    return [
        ("index_codebase", {"path": "/"}, "filesystem root"),
        ("index_codebase", {"path": "/proc"}, "pseudo filesystem"),
        ("index_codebase", {"path": "/sys/kernel"}, "pseudo filesystem"),
        ("search_code", {"path": repo, "query": "x", "pathFilter": ["\\"]}, "pathFilter: invalid glob"),
        ("search_code", {"path": repo, "query": "x", "excludePatterns": ["[z-a]"]}, "excludePatterns"),
        ("search_code", {"path": repo + "\0/x", "query": "x"}, "NUL byte"),
        ("get_indexing_status", {"path": "a\0b"}, "NUL byte"),
        ("search_code", {"path": repo, "query": "x" * 20_000}, "query is too long"),
        ("find_symbol", {"path": repo, "name": "n" * 1000}, "name is too long"),
        ("search_code", {"path": repo, "query": "x", "pathFilter": ["*.py"] * 500}, "too many entries"),
        ("search_code", {"path": repo, "query": "x", "pathFilter": ["a" * 1000]}, "too long"),
        ("index_codebase", {"path": tmp, "ignorePatterns": ["x"] * 500}, "too many entries"),
        ("search_code", {"path": repo, "query": "x", "mode": "m" * 100_000}, "mode must be"),
        # strict arguments: unknown names and wrong types name the argument
        ("search_code", {"path": repo, "query": "x", "bogusArgument": 1}, "bogusArgument"),
        ("search_code", {"path": repo, "query": "x", "limit": True}, "limit"),
        ("index_codebase", {"path": tmp, "force": "yes"}, "force"),
        ("index_codebase", {"path": tmp, "quantization": "int4"}, "quantization must be"),
        ("find_symbol", {"path": repo, "name": "x", "limit": "many"}, "limit"),
        # one lookup limit, the engine's, for both lookup tools
        ("find_symbol", {"path": repo, "name": "x", "limit": 201}, "limit must be between 1 and 200"),
        ("find_references", {"path": repo, "name": "x", "limit": 201}, "limit must be between 1 and 200"),
        ("list_codebases", {"unexpected": True}, "unexpected"),
    ]


async def _check_bad_calls(s: ClientSession, repo: Path, tmp: Path) -> None:
    for tool, args, needle in _bad_calls(str(repo), str(tmp)):
        message = await fails(s, tool, **args)
        assert needle in message, (tool, needle, message[:300])
        assert message.strip() != f"Error executing tool {tool}", message
        assert len(message) < MAX_REPLY, (tool, len(message))
    st, _ = await ok(s, "get_indexing_status", path=str(tmp))
    assert st["status"] == "not_indexed"  # none of the refused calls indexed anything


def test_bad_input_over_stdio(mcp_home: Path, mcp_repo: Path, tmp_path: Path) -> None:
    async def go() -> None:
        async with stdio_session(mcp_home) as s:
            await ok(s, "index_codebase", path=str(mcp_repo), wait=True)
            await _check_bad_calls(s, mcp_repo, tmp_path)
            # a 10 MB query: one short sentence back, not the query
            res = await s.call_tool("search_code", {"path": str(mcp_repo), "query": "q" * BIG})
            assert res.is_error and "query is too long" in text(res) and len(text(res)) < MAX_REPLY
            # the advertised surface: tools only; an unknown prompt is "method not found"
            caps = (await s.initialize()).capabilities
            assert caps.tools is not None and caps.prompts is None and caps.resources is None
            with pytest.raises(MCPError) as err:
                await s.get_prompt("no-such-prompt")
            assert err.value.code == -32601
            # the strict schemas say so too
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert all(t.input_schema.get("additionalProperties") is False for t in tools.values())
            quant = tools["index_codebase"].input_schema["properties"]["quantization"]
            assert {"none", "int8", "rabitq", "auto"} <= set(quant["enum"])
            # ... and a good call still works after all that
            res2, _ = await ok(s, "search_code", path=str(mcp_repo), query="reticulate splines", limit=3)
            assert res2["results"]
            # a damaged index: the reason reaches the model, status says so, clear still works
            damaged = tmp_path / "damaged"
            shutil.copytree(mcp_repo, damaged)
            await ok(s, "index_codebase", path=str(damaged), wait=True)
        (db,) = (mcp_home / "codebases").glob("damaged-*/index.sqlite")
        with db.open("r+b") as f:  # once the server that wrote it is gone
            f.write(b"\xde\xad\xbe\xef" * 2048)
        async with stdio_session(mcp_home) as s:  # a server that opens the damaged file
            message = await fails(s, "search_code", path=str(damaged), query="splines", mode="keyword")
            assert "damaged" in message and "claude-context index" in message, message
            st, _ = await ok(s, "get_indexing_status", path=str(damaged))
            assert st["status"] == "failed" and "damaged" in st["error"], st
            await ok(s, "clear_index", path=str(damaged))

    run(go)


def test_index_codebase_quantization(mcp_home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "quant"
    generate_repo(repo, 12, "quantized")

    async def go() -> None:
        async with stdio_session(mcp_home) as s:
            out, _ = await ok(s, "index_codebase", path=str(repo), wait=True, quantization="int8")
            assert out["status"] == "indexed"
            st, _ = await ok(s, "get_indexing_status", path=str(repo))
            assert "int8" in st["vector_index"], st
            res, _ = await ok(s, "search_code", path=str(repo), query="quantized tunable number 7")
            assert res["results"]

    run(go)


def _wait_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        with socket.socket(family) as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {host}:{port}")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_bad_input_over_http_and_own_loopback_host(mcp_home: Path, mcp_repo: Path, tmp_path: Path) -> None:
    hosts = ["127.0.0.2"] + (["::1"] if _has_ipv6_loopback() else [])
    procs = []
    try:
        for host in hosts:
            port = free_port()
            log = open(tmp_path / f"http-{port}.log", "w")  # noqa: SIM115 - the child owns it
            proc = subprocess.Popen(
                [*SERVE, "--transport", "http", "--host", host, "--port", str(port)],
                env=_env(mcp_home),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            procs.append(proc)
            _wait_port(host, port, proc)
            url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/mcp"

            async def go(url: str = url, first: bool = host == hosts[0]) -> None:
                async with streamable_http_client(url) as (r, w), ClientSession(r, w) as s:
                    await s.initialize()  # was 421 Misdirected Request for the server's own address
                    listed, _ = await ok(s, "list_codebases")
                    assert isinstance(listed["codebases"], list)
                    if first:
                        await ok(s, "index_codebase", path=str(mcp_repo), wait=True)
                        await _check_bad_calls(s, mcp_repo, tmp_path)
                        query = "q" * 600_000  # once a reply the official client could not read
                        big = await s.call_tool("search_code", {"path": str(mcp_repo), "query": query})
                        assert big.is_error and "query is too long" in text(big)
                        assert len(text(big)) < MAX_REPLY

            run(go)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(15)


def test_stdio_exits_promptly_when_stdin_closes_during_indexing(mcp_home: Path, tmp_path: Path) -> None:
    repo = generate_repo(tmp_path / "bye", 400, "farewell")
    home = tmp_path / "home"  # its own home: the model loads (slowly) while the job waits for it
    home.mkdir()
    proc = subprocess.Popen(
        [*SERVE],
        env=_env(home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "err.log").open("w"),
    )
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict) -> None:
        proc.stdin.write((json.dumps(message) + "\n").encode())
        proc.stdin.flush()

    init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
    assert b'"result"' in proc.stdout.readline()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    call = {"name": "index_codebase", "arguments": {"path": str(repo)}}
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
    assert b"Started background indexing" in proc.stdout.readline()
    time.sleep(3)  # the job is now chunking or waiting for the model
    t0 = time.monotonic()
    proc.stdin.close()
    proc.wait(30)
    took = time.monotonic() - t0
    assert proc.returncode == 0, (tmp_path / "err.log").read_text()[-2000:]
    assert took < 3.0, f"the server took {took:.1f}s to exit after stdin closed"
    # the abandoned job resumes like after a crash: status says it stopped, not "indexed"
    st = subprocess.run(
        [sys.executable, "-m", "claude_context.cli", "status", str(repo), "--json"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(st.stdout)["status"] in {"failed", "indexed"}, st.stdout
