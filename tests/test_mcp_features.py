"""Issue 18 over MCP with the official client, stdio and streamable HTTP: instructions, search
across codebases, pages, references, bounded output, and their bad inputs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from test_mcp import POLYGLOT, _env, fails, mcp_home, ok, run  # noqa: F401 - mcp_home is a fixture
from test_mcp import http_server as http_server

XREF = Path(__file__).parent / "fixtures" / "xref"
SERVE = [sys.executable, "-m", "claude_context.cli", "serve"]


def _repos(base: Path) -> tuple[Path, Path]:
    repo, xref = base / "polyglot", base / "xref"
    shutil.copytree(POLYGLOT, repo, ignore=shutil.ignore_patterns("EXPECTED.json"))
    shutil.copytree(XREF, xref)
    return repo, xref


async def _exercise(s: ClientSession, instructions: str | None, repo: Path, xref: Path, other: Path) -> None:
    assert instructions and "find_references" in instructions and "search_code" in instructions
    assert "next_offset" in instructions
    tools = {t.name: t for t in (await s.list_tools()).tools}
    assert tools["find_references"].input_schema["required"] == ["path", "name"]
    assert {"offset", "maxTokens"} <= set(tools["find_symbol"].input_schema["properties"])
    for path in (repo, xref):
        out, _ = await ok(s, "index_codebase", path=str(path), wait=True)
        assert out["status"] == "indexed"

    # one ranking over both codebases: path omitted, or a list
    both, txt = await ok(s, "search_code", query="convert an amount between currencies at a rate")
    assert set(both["roots"]) == {str(repo), str(xref)} and both["root"] == ""
    assert both["results"][0]["root"] == str(xref)
    assert {h["root"] for h in both["results"]} == {str(repo), str(xref)}
    assert f"in {xref}" in txt
    listed, _ = await ok(s, "search_code", query="semantic version", path=[str(repo), str(xref)], limit=3)
    assert listed["results"][0]["root"] == str(repo)
    bad = await fails(s, "search_code", query="x", path=[str(repo), str(other)])
    assert f"not an indexed codebase: {other}" in bad

    # pages: next_offset leads on; past the end is an empty page that says so
    first, txt = await ok(s, "search_code", path=str(repo), query="parse values", limit=3)
    assert first["has_more"] and first["next_offset"] == 3 and "offset=3" in txt
    second, _ = await ok(s, "search_code", path=str(repo), query="parse values", limit=3, offset=3)
    assert second["offset"] == 3 and second["results"]
    shown = {(h["path"], h["start_line"]) for h in first["results"]}
    assert not shown & {(h["path"], h["start_line"]) for h in second["results"]}
    past, txt = await ok(s, "search_code", path=str(repo), query="parse values", offset=450)
    assert past["results"] == [] and not past["has_more"] and "past the end" in txt
    assert "offset must be" in await fails(s, "search_code", path=str(repo), query="x", offset=-1)
    # bounded: a huge maxTokens is lowered to the output ceiling
    big, _ = await ok(s, "search_code", path=str(repo), query="function", limit=50, maxTokens=90_000)
    assert big["max_tokens"] <= 8000 and "lowered" in big["note"]

    # references: definition first, every call site, each with its line
    refs, txt = await ok(s, "find_references", path=str(xref), name="formatAmount")
    items = refs["results"]
    assert items[0]["kind"] == "definition" and items[0]["path"] == "web/src/format.ts"
    calls = {(h["path"], h["line"]) for h in items if h["kind"] == "call"}
    assert calls == {("web/src/basket.ts", 7), ("web/src/Receipt.tsx", 4)}
    assert "web/src/basket.ts:7  [call]" in txt and "formatAmount(this.cents" in txt
    paged, txt = await ok(s, "find_references", path=str(xref), name="formatAmount", limit=2)
    assert paged["has_more"] and paged["next_offset"] == 2 and "offset=2" in txt
    rest, _ = await ok(s, "find_references", path=str(xref), name="formatAmount", offset=2)
    assert [h["line"] for h in paged["results"] + rest["results"]] == [h["line"] for h in items]
    none, txt = await ok(s, "find_references", path=str(xref), name="neverUsedAnywhere")
    assert none["results"] == [] and "no definition or use" in txt
    past, _ = await ok(s, "find_references", path=str(xref), name="formatAmount", offset=99)
    assert past["results"] == [] and "past the end" in past["note"]
    assert "name is empty" in await fails(s, "find_references", path=str(xref), name=" ")
    assert "not indexed" in await fails(s, "find_references", path=str(other), name="x")

    sym, _ = await ok(s, "find_symbol", path=str(repo), name="s", limit=1)
    assert len(sym["results"]) == 1 and sym["has_more"] and sym["next_offset"] == 1

    # the project file: a malformed one is an error naming file and line; an ignore pattern drops
    # a folder at the next update
    (other / "a.py").write_text("x = 1\n")
    (other / ".claude-context.toml").write_text('ignore = ["b/"]\nsplitter = "ast\n')
    bad = await fails(s, "index_codebase", path=str(other))
    assert f"{other / '.claude-context.toml'}:2: invalid TOML" in bad
    (xref / ".claude-context.toml").write_text('ignore = ["go/cmd/"]\n')
    out, _ = await ok(s, "index_codebase", path=str(xref), wait=True)
    assert out["status"] == "indexed"
    refs, _ = await ok(s, "find_references", path=str(xref), name="Convert")
    assert [h["path"] for h in refs["results"]] == ["go/rates/rates.go"]


def test_features_over_stdio(mcp_home: Path, tmp_path: Path) -> None:  # noqa: F811
    repo, xref = _repos(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(mcp_home / "embeddings.sqlite", home / "embeddings.sqlite")

    async def go() -> None:
        params = StdioServerParameters(command=SERVE[0], args=SERVE[1:], env=_env(home))
        with open(tmp_path / "server.log", "w") as log:
            async with stdio_client(params, errlog=log) as (r, w), ClientSession(r, w) as s:
                init = await s.initialize()
                await _exercise(s, init.instructions, repo, xref, other)

    run(go)


def test_features_over_http(http_server, mcp_home: Path, tmp_path: Path) -> None:  # noqa: F811
    # this module's own home (``mcp_home`` is module-scoped): "every codebase" is the two below
    repo, xref = _repos(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    url, _ = http_server()

    async def go() -> None:
        async with streamable_http_client(url) as (r, w), ClientSession(r, w) as s:
            init = await s.initialize()
            await _exercise(s, init.instructions, repo, xref, other)

    run(go)
