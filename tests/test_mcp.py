"""The MCP server end to end, driven by the official ``mcp`` client over stdio and streamable HTTP.

Every server is a real ``claude-context serve`` subprocess on a private CLAUDE_CONTEXT_HOME whose
embedding cache is pre-warmed with the fixture's chunks (conftest ``warm_cache``), so indexing the
fixture costs no model time; the repositories that must take a while to index are generated with
fresh content, so they do real embedding work.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

POLYGLOT = Path(__file__).parent / "fixtures" / "polyglot"
SERVE = [sys.executable, "-m", "claude_context.cli", "serve"]
TOOLS = {
    "index_codebase",
    "search_code",
    "clear_index",
    "get_indexing_status",
    "list_codebases",
    "find_symbol",
    "find_references",
}
HIT_FIELDS = {"path", "start_line", "end_line", "language", "symbol", "kind", "score", "content"}
TIMEOUT = 240

PROBE = '''"""Navigation helpers for the airship fleet (a file only the MCP tests know about)."""


def reticulate_splines(count: int) -> list[int]:
    """Reticulate the given number of splines for the zeppelin navigation table."""
    table = []
    for i in range(count):
        table.append(i * i % 7)
    return table


class ZeppelinNavigator:
    """Plots a course between two mooring masts."""

    def plot_course(self, start: str, end: str) -> list[str]:
        return [start, end]
'''


# -- helpers --------------------------------------------------------------------------------------


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CLAUDE_CONTEXT_TOKEN"}
    env.update(CLAUDE_CONTEXT_HOME=str(home), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **extra)
    return env


def run(fn: Callable[[], Awaitable[Any]], timeout: float = TIMEOUT) -> Any:
    async def bounded() -> Any:
        with anyio.fail_after(timeout):
            return await fn()

    return anyio.run(bounded)


@asynccontextmanager
async def stdio_session(home: Path, cwd: Path | None = None, **env: str) -> AsyncIterator[ClientSession]:
    """A ``claude-context serve`` subprocess and an initialized client session on it."""
    log = open(home / f"server-{time.monotonic_ns()}.log", "w")  # noqa: SIM115 - closed below
    params = StdioServerParameters(command=SERVE[0], args=SERVE[1:], env=_env(home, **env), cwd=cwd)
    try:
        async with stdio_client(params, errlog=log) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            yield s
    finally:
        log.close()


def text(res: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in res.content)


async def ok(s: ClientSession, tool: str, **args: Any) -> tuple[dict[str, Any], str]:
    res = await s.call_tool(tool, args)
    assert not res.is_error, f"{tool}({args}) failed: {text(res)}"
    assert res.structured_content is not None, f"{tool} returned no structured content"
    return res.structured_content, text(res)


async def fails(s: ClientSession, tool: str, **args: Any) -> str:
    res = await s.call_tool(tool, args)
    assert res.is_error, f"{tool}({args}) should have failed: {text(res)[:300]}"
    return text(res)


async def poll_status(s: ClientSession, path: Path, until: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        st, _ = await ok(s, "get_indexing_status", path=str(path))
        if st["status"] == until:
            return st
        assert st["status"] in {"indexing", "indexed", "not_indexed"}, st
        assert time.monotonic() < deadline, f"status stuck at {st}"
        await anyio.sleep(0.2)


def generate_repo(root: Path, n_files: int, tag: str) -> Path:
    """Many small Python files with content unique to ``tag`` (so no embedding is cached)."""
    for i in range(n_files):
        d = root / f"pkg{i % 20:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"mod_{i:04d}.py").write_text(
            f"{tag.upper()}_SETTING_{i} = {i * 7919 % 1000}  # {tag} tunable number {i} of the fleet\n"
        )
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


@pytest.fixture(scope="module")
def mcp_home(tmp_path_factory: pytest.TempPathFactory, warm_cache: Path) -> Path:
    """A CLAUDE_CONTEXT_HOME shared by this module's servers, its cache knowing the fixture chunks."""
    home = tmp_path_factory.mktemp("mcp-home")
    shutil.copy(warm_cache, home / "embeddings.sqlite")
    return home


@pytest.fixture(scope="module")
def mcp_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The polyglot fixture plus a probe file whose symbols only these tests rely on."""
    dst = tmp_path_factory.mktemp("mcp-repo") / "polyglot"
    shutil.copytree(POLYGLOT, dst, ignore=shutil.ignore_patterns("EXPECTED.json"))
    (dst / "app" / "airship.py").write_text(PROBE)
    return dst


@pytest.fixture
def http_server(mcp_home: Path, tmp_path: Path) -> Callable[..., tuple[str, subprocess.Popen]]:
    """Start ``claude-context serve --transport http`` subprocesses; all are stopped afterwards."""
    procs: list[subprocess.Popen] = []

    def start(*args: str, **env: str) -> tuple[str, subprocess.Popen]:
        port = free_port()
        log = open(tmp_path / f"http-{port}.log", "w")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            [*SERVE, "--transport", "http", "--port", str(port), *args],
            env=_env(mcp_home, **env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        wait_port(port, proc)
        return f"http://127.0.0.1:{port}/mcp", proc

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    return schema["$defs"][ref.rsplit("/", 1)[-1]] if ref else node


# -- stdio ----------------------------------------------------------------------------------------


def _open_writer(fifo: Path) -> int | None:
    """A write end of the FIFO once some process has it open for reading, else None."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return None


def test_tools_and_schemas_while_the_model_loads(mcp_home: Path, tmp_path: Path) -> None:
    # A "model" whose modules.json is a FIFO: loading it blocks on the read until the test closes
    # the write end, so the server must answer the handshake and tool calls while its model load is
    # provably in progress.
    model = tmp_path / "blocking-model"
    model.mkdir()
    fifo = model / "modules.json"
    os.mkfifo(fifo)

    async def go() -> None:
        writer: int | None = None
        async with stdio_session(mcp_home, CLAUDE_CONTEXT_MODEL=str(model)) as s:
            try:
                tools = {t.name: t for t in (await s.list_tools()).tools}
                while (writer := _open_writer(fifo)) is None:  # until the background load starts
                    await anyio.sleep(0.1)
                # the load is now blocked reading the FIFO: the server still answers
                listed, _ = await ok(s, "list_codebases")
                assert isinstance(listed["codebases"], list)
                st, _ = await ok(s, "get_indexing_status", path=str(tmp_path))
                assert st["status"] == "not_indexed"
            finally:
                if writer is not None:
                    os.close(writer)  # release the load (it then fails on the empty file)
        assert set(tools) == TOOLS

        idx = tools["index_codebase"].input_schema
        assert idx["required"] == ["path"]
        props = idx["properties"]
        assert props["force"]["default"] is False
        assert props["splitter"]["default"] == "ast" and {"ast", "text"} <= set(props["splitter"]["enum"])
        assert props["customExtensions"]["type"] == "array" and props["ignorePatterns"]["type"] == "array"
        assert props["wait"]["default"] is False

        search = tools["search_code"].input_schema
        assert search["required"] == ["query"]  # no path: every indexed codebase
        props = search["properties"]
        assert props["limit"]["default"] == 10 and props["limit"]["maximum"] == 50
        assert props["extensionFilter"]["type"] == "array" and props["pathFilter"]["type"] == "array"
        assert props["mode"]["default"] == "hybrid" and props["mode"]["enum"] == [
            "hybrid",
            "semantic",
            "keyword",
        ]
        assert "maxTokens" in props

        for name in ("clear_index", "get_indexing_status"):
            assert tools[name].input_schema["required"] == ["path"]
        assert tools["list_codebases"].input_schema.get("required", []) == []
        assert tools["find_symbol"].input_schema["required"] == ["path", "name"]
        assert "kind" in tools["find_symbol"].input_schema["properties"]

        for name, tool in tools.items():
            assert tool.output_schema and tool.output_schema["type"] == "object", name
            assert tool.description, name
        out = tools["search_code"].output_schema
        hit = _resolve(out, out["properties"]["results"]["items"])
        # the reference's fields are all required; ``context`` (enclosing header) is optional extra
        assert set(hit["properties"]) == HIT_FIELDS | {"context", "root"}
        assert set(hit["required"]) == HIT_FIELDS
        assert {"partial", "truncated", "note"} <= set(out["properties"])
        status = tools["get_indexing_status"].output_schema["properties"]
        assert set(status["status"]["enum"]) == {"not_indexed", "indexing", "indexed", "failed"}
        assert {"percent", "files_done", "files_total", "chunks_done", "last_indexed_at", "error"} <= set(
            status
        )
        sym = tools["find_symbol"].output_schema
        item = _resolve(sym, sym["properties"]["results"]["items"])
        assert {"path", "start_line", "end_line", "kind", "signature"} <= set(item["properties"])
        assert tools["search_code"].annotations and tools["search_code"].annotations.read_only_hint
        assert tools["clear_index"].annotations and tools["clear_index"].annotations.destructive_hint

    run(go, timeout=90)  # a handshake that waited for the model would hang here until this fails


def test_index_search_status_and_symbols(mcp_home: Path, mcp_repo: Path) -> None:
    repo = mcp_repo

    async def go() -> None:
        async with stdio_session(mcp_home, cwd=repo.parent) as s:
            st, txt = await ok(s, "get_indexing_status", path=str(repo))
            assert st["status"] == "not_indexed" and "not indexed" in txt

            t0 = time.monotonic()
            out, txt = await ok(s, "index_codebase", path=str(repo))
            assert time.monotonic() - t0 < 10
            assert out["started"] and not out["waited"] and out["root"] == str(repo)
            assert out["status"] == "indexed" or (
                out["status"] == "indexing" and "get_indexing_status" in txt
            )

            st = await poll_status(s, repo, "indexed")
            on_disk = sum(1 for p in repo.rglob("*") if p.is_file())
            assert st["percent"] == 100 and st["files"] == on_disk and st["chunks"] >= on_disk
            assert st["last_indexed_at"] and st["last_indexed_at"][:2] == "20" and st["error"] == ""
            assert st["size_bytes"] > 0 and st["languages"].get("python", 0) >= 3

            # a relative path resolves against the server's working directory
            rel, _ = await ok(s, "get_indexing_status", path=repo.name)
            assert rel["root"] == str(repo) and rel["status"] == "indexed"

            out, txt = await ok(
                s, "search_code", path=str(repo), query="reticulate splines for zeppelin navigation"
            )
            hits = out["results"]
            assert hits and not out["partial"] and out["percent"] == 100 and not out["truncated"]
            assert hits[0]["path"] == "app/airship.py" and "reticulate_splines" in hits[0]["symbol"]
            assert (
                f"app/airship.py:{hits[0]['start_line']}-{hits[0]['end_line']}" in txt and "```python" in txt
            )
            for h in hits:
                assert set(h) == HIT_FIELDS | {"context", "root"} and not h["path"].startswith("/")
                assert h["root"] == str(repo)
                lines = (repo / h["path"]).read_text().splitlines()
                assert h["content"] == "\n".join(lines[h["start_line"] - 1 : h["end_line"]]), h["path"]
            for i, a in enumerate(hits):  # neighbouring hits of one file were merged
                for b in hits[i + 1 :]:
                    if a["path"] == b["path"]:
                        assert b["start_line"] > a["end_line"] + 1 or a["start_line"] > b["end_line"] + 1, (
                            a,
                            b,
                        )

            # a subfolder path searches only that subfolder; filters narrow further
            sub, _ = await ok(
                s, "search_code", path=str(repo / "crates"), query="parse a version string", limit=5
            )
            assert sub["subfolder"] == "crates" and sub["root"] == str(repo) and sub["results"]
            assert all(h["path"].startswith("crates/") for h in sub["results"])
            py, _ = await ok(
                s, "search_code", path=str(repo), query="navigation table", extensionFilter=[".py"]
            )
            assert py["results"] and all(h["path"].endswith(".py") for h in py["results"])
            web, _ = await ok(
                s, "search_code", path=str(repo), query="request handler", pathFilter=["web/**"]
            )
            assert web["results"] and all(h["path"].startswith("web/") for h in web["results"])
            kw, _ = await ok(
                s, "search_code", path=str(repo), query="ZeppelinNavigator", mode="keyword", limit=3
            )
            assert kw["mode"] == "keyword" and kw["results"][0]["path"] == "app/airship.py"

            # the token budget bounds the contents, and the text says something was cut
            small, txt = await ok(s, "search_code", path=str(repo), query="function", limit=20, maxTokens=100)
            assert small["truncated"] and small["max_tokens"] == 100
            assert sum(len(h["content"]) for h in small["results"]) <= 400 and "cut" in txt

            sym, txt = await ok(s, "find_symbol", path=str(repo), name="reticulate_splines")
            top = sym["results"][0]
            assert (top["path"], top["kind"]) == ("app/airship.py", "function")
            assert "def reticulate_splines" in top["signature"] and top["start_line"] == 4
            assert "app/airship.py:4-" in txt
            prefix, _ = await ok(s, "find_symbol", path=str(repo), name="reticul")
            assert any(r["symbol"] == "reticulate_splines" for r in prefix["results"])
            cls, _ = await ok(s, "find_symbol", path=str(repo), name="ZeppelinNavigator", kind="class")
            assert [r["kind"] for r in cls["results"]] == ["class"]
            none, _ = await ok(s, "find_symbol", path=str(repo), name="ZeppelinNavigator", kind="function")
            assert none["results"] == []

            listed, txt = await ok(s, "list_codebases")
            mine = [c for c in listed["codebases"] if c["root"] == str(repo)]
            assert (
                mine and mine[0]["status"] == "indexed" and mine[0]["files"] == on_disk and str(repo) in txt
            )

            # wait=true holds the call and sends progress notifications for the client's token
            progress: list[tuple[float, float | None]] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                progress.append((done, total))

            res = await s.call_tool(
                "index_codebase",
                {"path": str(repo), "force": True, "wait": True},
                progress_callback=on_progress,
            )
            assert not res.is_error, text(res)
            out = res.structured_content
            assert out["waited"] and out["status"] == "indexed" and out["files_changed"] == on_disk
            assert progress and progress[-1][0] == progress[-1][1] == on_disk

    run(go)


def test_errors_are_tool_errors(mcp_home: Path, mcp_repo: Path, tmp_path: Path) -> None:
    unindexed = tmp_path / "unindexed"
    unindexed.mkdir()
    (unindexed / "a.py").write_text("x = 1\n")
    missing = str(tmp_path / "missing")
    a_file = str(unindexed / "a.py")

    async def go() -> None:
        async with stdio_session(mcp_home) as s:
            u = str(unindexed)
            assert "not indexed yet" in await fails(s, "search_code", path=u, query="x")
            assert "index_codebase" in await fails(s, "search_code", path=u, query="x")
            assert "not indexed" in await fails(s, "find_symbol", path=u, name="x")
            assert "not indexed" in await fails(s, "clear_index", path=u)
            for tool, args in [
                ("search_code", {"query": "x"}),
                ("index_codebase", {}),
                ("get_indexing_status", {}),
                ("find_symbol", {"name": "x"}),
                ("clear_index", {}),
            ]:
                assert "does not exist" in await fails(s, tool, path=missing, **args), tool
                assert "is a file" in await fails(s, tool, path=a_file, **args), tool
            assert "does not exist" in await fails(s, "search_code", path=str(mcp_repo / "nope"), query="x")
            assert "path is empty" in await fails(s, "get_indexing_status", path="  ")
            assert "query is empty" in await fails(s, "search_code", path=u, query="  ")
            assert "mode must be" in await fails(s, "search_code", path=u, query="x", mode="fuzzy")
            assert "limit must be" in await fails(s, "search_code", path=u, query="x", limit=0)
            assert "limit must be" in await fails(s, "search_code", path=u, query="x", limit=51)
            assert "maxTokens must be" in await fails(s, "search_code", path=u, query="x", maxTokens=10)
            assert "splitter must be" in await fails(s, "index_codebase", path=u, splitter="words")
            assert "name is empty" in await fails(s, "find_symbol", path=u, name="")
            assert "query" in await fails(s, "search_code", path=u)  # a missing required argument
            # nothing was indexed by any of these
            st, _ = await ok(s, "get_indexing_status", path=u)
            assert st["status"] == "not_indexed"

    run(go)


def test_search_and_clear_during_indexing(mcp_home: Path, tmp_path: Path) -> None:
    repo = generate_repo(tmp_path / "big", 600, "during")

    async def go() -> None:
        async with stdio_session(mcp_home) as s:
            t0 = time.monotonic()
            out, _ = await ok(s, "index_codebase", path=str(repo))
            assert out["started"] and time.monotonic() - t0 < 10  # returns at once

            again, txt = await ok(s, "index_codebase", path=str(repo), force=True)
            assert not again["started"] and again["status"] == "indexing" and "already being indexed" in txt

            seen_indexing = False
            partial: dict[str, Any] | None = None
            while partial is None:
                st, txt = await ok(s, "get_indexing_status", path=str(repo))
                assert st["status"] == "indexing", f"indexing ended before partial results were seen: {st}"
                assert 0 <= st["percent"] < 100 and "being indexed" in txt
                seen_indexing = True
                res, txt = await ok(s, "search_code", path=str(repo), query="during tunable number", limit=5)
                assert res["partial"]
                if res["results"]:
                    partial, partial_text = res, txt
                await anyio.sleep(0.05)
            assert seen_indexing and partial["percent"] < 100
            assert "indexing is in progress" in partial_text
            assert all(h["path"].startswith("pkg") for h in partial["results"])

            cleared, txt = await ok(s, "clear_index", path=str(repo))
            assert cleared["cleared"] and cleared["stopped_job"] and "stopped" in txt
            st, _ = await ok(s, "get_indexing_status", path=str(repo))
            assert st["status"] == "not_indexed"
            listed, _ = await ok(s, "list_codebases")
            assert str(repo) not in [c["root"] for c in listed["codebases"]]
            assert "not indexed" in await fails(s, "search_code", path=str(repo), query="during")

    run(go)


def test_two_servers_share_one_index(mcp_home: Path, tmp_path: Path) -> None:
    repo = generate_repo(tmp_path / "shared", 150, "shared")

    async def go() -> None:
        async with stdio_session(mcp_home) as a, stdio_session(mcp_home) as b:
            out, _ = await ok(a, "index_codebase", path=str(repo))
            assert out["started"]
            # the other process sees the job through the store, and does not start a second one
            st, _ = await ok(b, "get_indexing_status", path=str(repo))
            assert st["status"] == "indexing", st
            assert "busy" in await fails(b, "index_codebase", path=str(repo))

            done_b = await poll_status(b, repo, "indexed")
            done_a, _ = await ok(a, "get_indexing_status", path=str(repo))
            assert done_a["status"] == "indexed"
            for key in ("files", "chunks", "last_indexed_at"):
                assert done_a[key] == done_b[key], key
            assert done_b["files"] == 150
            res, _ = await ok(b, "search_code", path=str(repo), query="shared tunable number 42", limit=3)
            assert res["results"] and not res["partial"]
            listed, _ = await ok(b, "list_codebases")
            assert str(repo) in [c["root"] for c in listed["codebases"]]

    run(go)


# -- HTTP -----------------------------------------------------------------------------------------


def test_http_transport_and_host_checks(http_server, mcp_home: Path, mcp_repo: Path, tmp_path: Path) -> None:
    url, _ = http_server()
    repo = tmp_path / "http-repo"
    shutil.copytree(mcp_repo, repo)

    async def go() -> None:
        async with streamable_http_client(url) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            assert {t.name for t in (await s.list_tools()).tools} == TOOLS
            out, _ = await ok(s, "index_codebase", path=str(repo), wait=True)
            assert out["status"] == "indexed"
            res, _ = await ok(
                s, "search_code", path=str(repo), query="reticulate splines for zeppelin navigation"
            )
            assert res["results"][0]["path"] == "app/airship.py"

        async with httpx2.AsyncClient(timeout=30) as client:
            good = await client.post(url, json=INIT, headers=HEADERS)
            assert good.status_code == 200, good.text
            port = url.split(":")[2].split("/")[0]
            host = await client.post(url, json=INIT, headers={**HEADERS, "Host": f"evil.example:{port}"})
            assert host.status_code == 421
            origin = await client.post(url, json=INIT, headers={**HEADERS, "Origin": "http://evil.example"})
            assert origin.status_code == 403

    run(go)


def test_http_bearer_token(http_server) -> None:
    url, _ = http_server(CLAUDE_CONTEXT_TOKEN="s3cret-token")

    async def go() -> None:
        async with httpx2.AsyncClient(timeout=30) as client:
            none = await client.post(url, json=INIT, headers=HEADERS)
            assert none.status_code == 401
            wrong = await client.post(url, json=INIT, headers={**HEADERS, "Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            right = await client.post(
                url, json=INIT, headers={**HEADERS, "Authorization": "Bearer s3cret-token"}
            )
            assert right.status_code == 200, right.text
        auth = httpx2.AsyncClient(headers={"Authorization": "Bearer s3cret-token"}, timeout=30)
        async with auth, streamable_http_client(url, http_client=auth) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            assert {t.name for t in (await s.list_tools()).tools} == TOOLS

    run(go)


def test_http_refuses_remote_bind_without_token(http_server, mcp_home: Path) -> None:
    proc = subprocess.run(
        [*SERVE, "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port())],
        env=_env(mcp_home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "refusing to listen on 0.0.0.0" in lines[0] and "CLAUDE_CONTEXT_TOKEN" in lines[0]
    )
    # the explicit flag (or a token) lets it start
    _, server = http_server("--host", "0.0.0.0", "--allow-remote")
    assert server.poll() is None
