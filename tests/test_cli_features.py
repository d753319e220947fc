"""Issue 18 from the command line: search across codebases, refs, symbol, init (real subprocesses)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from test_cli import assert_one_line_error, run

XREF = Path(__file__).parent / "fixtures" / "xref"


def test_search_several_refs_symbol_and_init(
    home: Path, repo: Path, warm_cache: Path, tmp_path: Path
) -> None:
    shutil.copy(warm_cache, home / "embeddings.sqlite")
    xref = tmp_path / "xref"
    shutil.copytree(XREF, xref)
    for root in (repo, xref):
        run(home, "index", str(root), "--quiet")

    q = "convert an amount between currencies at a rate"
    everywhere = json.loads(run(home, "search", "--all", q, "--json").stdout)
    assert set(everywhere["roots"]) == {str(repo), str(xref)}
    assert {r["root"] for r in everywhere["results"]} == {str(repo), str(xref)}
    assert everywhere["results"][0]["root"] == str(xref)
    named = json.loads(run(home, "search", str(repo), str(xref), q, "-n", "3", "--json").stdout)
    assert [r["path"] for r in named["results"]] == [r["path"] for r in everywhere["results"][:3]]
    assert named["has_more"] and named["next_offset"] == 3
    page = json.loads(
        run(home, "search", str(repo), str(xref), q, "-n", "3", "--offset", "3", "--json").stdout
    )
    assert page["offset"] == 3 and page["results"][0]["path"] == everywhere["results"][3]["path"]
    text = run(home, "search", "--all", q, "-n", "2").stdout
    assert f"in {xref}" in text and "more with --offset 2" in text
    assert_one_line_error(run(home, "search", "q", ok=False), "give a codebase PATH", 2)
    assert_one_line_error(run(home, "search", "--all", str(repo), "q", ok=False), "not both", 2)
    assert_one_line_error(
        run(home, "search", str(repo), str(tmp_path), "q", ok=False), f"not an indexed codebase: {tmp_path}"
    )

    for name, defined, calls in [
        ("apply_discount", "py/shop/pricing.py", {"py/shop/cart.py:11", "py/shop/invoice.py:7"}),
        ("formatAmount", "web/src/format.ts", {"web/src/basket.ts:7", "web/src/Receipt.tsx:4"}),
        ("Convert", "go/rates/rates.go", {"go/cmd/report/main.go:10", "go/cmd/server/main.go:6"}),
    ]:
        found = json.loads(run(home, "refs", name, str(xref), "--json").stdout)["results"]
        assert found[0]["kind"] == "definition" and found[0]["path"] == defined
        assert {f"{r['path']}:{r['line']}" for r in found if r["kind"] == "call"} == calls
    text = run(home, "refs", "formatAmount", str(xref)).stdout
    assert "web/src/basket.ts:7  call  return" in text
    assert "no definition or use" in run(home, "refs", "nowhereAtAll", str(xref)).stdout
    sym = json.loads(run(home, "symbol", "Convert", str(xref), "--json").stdout)
    assert sym["results"][0]["signature"].startswith("func Convert(")

    project = tmp_path / "project"
    project.mkdir()
    (project / "CLAUDE.md").write_text("# Team notes\n")
    assert "updated" in run(home, "init", str(project), "--agent", "claude").stdout
    assert "unchanged" in run(home, "init", str(project), "--agent", "claude").stdout
    text = (project / "CLAUDE.md").read_text()
    assert text.startswith("# Team notes\n") and text.count("claude-context:begin") == 1
    made = json.loads(
        run(home, "init", str(project), "--agent", "cursor", "--agent", "codex", "--json").stdout
    )
    assert [m["action"] for m in made] == ["created", "created"]
    assert (project / ".cursor/rules/claude-context.mdc").exists() and (project / "AGENTS.md").exists()
    assert_one_line_error(run(home, "init", str(project), "--agent", "vim", ok=False), "unknown agent")
