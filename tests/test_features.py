"""Issue 18 through the engine: pages of results, search across codebases, references."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from claude_context.errors import UserError

XREF = Path(__file__).parent / "fixtures" / "xref"

# name -> (definition, every call site) in the xref fixture: defined in one file, called from two
CALLS = {
    "apply_discount": ("py/shop/pricing.py:4", {"py/shop/cart.py:11", "py/shop/invoice.py:7"}),
    "formatAmount": ("web/src/format.ts:2", {"web/src/basket.ts:7", "web/src/Receipt.tsx:4"}),
    "Convert": ("go/rates/rates.go:5", {"go/cmd/report/main.go:10", "go/cmd/server/main.go:6"}),
}


@pytest.fixture
def xref(tmp_path: Path) -> Path:
    dst = tmp_path / "xref"
    shutil.copytree(XREF, dst)
    return dst


@pytest.mark.parametrize("name", sorted(CALLS))
def test_references_find_every_call_site(engine, xref: Path, name: str) -> None:
    engine.index(xref)
    definition, calls = CALLS[name]
    found = engine.references(xref, name)
    first = found.results[0]
    assert first.kind == "definition" and f"{first.path}:{first.line}" == definition
    assert name in first.context
    uses = {f"{r.path}:{r.line}" for r in found.results if r.kind == "call"}
    assert uses == calls
    for r in found.results:  # each item carries its line's text
        assert r.context == (xref / r.path).read_text().splitlines()[r.line - 1].strip()
    if name != "Convert":  # Go imports name the package, not the function
        assert any(r.kind == "import" for r in found.results)


# language -> (definition file and text, two callers), the name, the definition's line
OTHER_LANGUAGES = {
    "ruby": (
        ("lib/pricing.rb", "# Prices.\ndef apply_discount(total, rate)\n  total * (1 - rate)\nend\n"),
        ("lib/cart.rb", "def cart_total(sum)\n  apply_discount(sum, 0.1)\nend\n"),
        ("lib/invoice.rb", "class Invoice\n  def due(sum)\n    apply_discount(sum, 0.2)\n  end\nend\n"),
        "apply_discount",
    ),
    "elixir": (
        (
            "lib/pricing.ex",
            "defmodule Shop.Pricing do\n  def apply_discount(total, rate) do\n"
            "    total * (1 - rate)\n  end\nend\n",
        ),
        (
            "lib/cart.ex",
            "defmodule Shop.Cart do\n  alias Shop.Pricing\n\n"
            "  def total(sum), do: Pricing.apply_discount(sum, 0.1)\nend\n",
        ),
        (
            "lib/invoice.ex",
            "defmodule Shop.Invoice do\n  def due(sum) do\n"
            "    Shop.Pricing.apply_discount(sum, 0.2)\n  end\nend\n",
        ),
        "apply_discount",
    ),
    "kotlin": (
        (
            "src/Pricing.kt",
            "package shop\n\nfun applyDiscount(total: Double, rate: Double): Double =\n"
            "    total * (1 - rate)\n",
        ),
        (
            "src/Cart.kt",
            "package shop\n\nfun cartTotal(sum: Double): Double {\n    return applyDiscount(sum, 0.1)\n}\n",
        ),
        (
            "src/Invoice.kt",
            "package shop\n\nclass Invoice {\n    fun due(sum: Double) = applyDiscount(sum, 0.2)\n}\n",
        ),
        "applyDiscount",
    ),
    "c": (
        (
            "src/pricing.c",
            "double apply_discount(double total, double rate) {\n  return total * (1 - rate);\n}\n",
        ),
        ("src/cart.c", "double cart_total(double sum) {\n  return apply_discount(sum, 0.1);\n}\n"),
        ("src/invoice.c", "double invoice_due(double sum) {\n  return apply_discount(sum, 0.2);\n}\n"),
        "apply_discount",
    ),
    "cpp": (
        (
            "src/pricing.cpp",
            "namespace shop {\ndouble applyDiscount(double total, double rate) {\n"
            "  return total * (1 - rate);\n}\n}\n",
        ),
        ("src/cart.cpp", "double cartTotal(double sum) {\n  return shop::applyDiscount(sum, 0.1);\n}\n"),
        (
            "src/invoice.cpp",
            "struct Invoice {\n  double due(double sum) { return shop::applyDiscount(sum, 0.2); }\n};\n",
        ),
        "applyDiscount",
    ),
    "csharp": (
        (
            "src/Pricing.cs",
            "static class Pricing {\n    public static double ApplyDiscount(double total, double rate)\n"
            "    {\n        return total * (1 - rate);\n    }\n}\n",
        ),
        (
            "src/Cart.cs",
            "class Cart {\n    double Total(double sum) {\n"
            "        return Pricing.ApplyDiscount(sum, 0.1);\n    }\n}\n",
        ),
        (
            "src/Invoice.cs",
            "class Invoice {\n    double Due(double sum) {\n"
            "        return Pricing.ApplyDiscount(sum, 0.2);\n    }\n}\n",
        ),
        "ApplyDiscount",
    ),
    "php": (
        (
            "src/pricing.php",
            "<?php\nfunction apply_discount($total, $rate) {\n    return $total * (1 - $rate);\n}\n",
        ),
        ("src/cart.php", "<?php\nfunction cart_total($sum) {\n    return apply_discount($sum, 0.1);\n}\n"),
        (
            "src/invoice.php",
            "<?php\nclass Invoice {\n    function due($sum) {\n"
            "        return apply_discount($sum, 0.2);\n    }\n}\n",
        ),
        "apply_discount",
    ),
    "swift": (
        (
            "Sources/Pricing.swift",
            "func applyDiscount(_ total: Double, _ rate: Double) -> Double {\n"
            "    return total * (1 - rate)\n}\n",
        ),
        (
            "Sources/Cart.swift",
            "func cartTotal(_ sum: Double) -> Double {\n    return applyDiscount(sum, 0.1)\n}\n",
        ),
        (
            "Sources/Invoice.swift",
            "struct Invoice {\n    func due(_ sum: Double) -> Double {\n"
            "        return applyDiscount(sum, 0.2)\n    }\n}\n",
        ),
        "applyDiscount",
    ),
}


@pytest.mark.parametrize("language", sorted(OTHER_LANGUAGES))
def test_references_in_more_languages(engine, tmp_path: Path, language: str) -> None:
    """Call sites are recorded beyond the first languages (Ruby, Kotlin, C, C++, C#, PHP, Swift,
    Elixir): ``find_references`` lists the definition, then both calls."""
    definition, *callers, name = OTHER_LANGUAGES[language]
    root = tmp_path / language
    for rel, text in (definition, *callers):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    engine.index(root)
    found = engine.references(root, name).results
    # the definition first, also a C# method, whose class is one chunk (found in ``defs``)
    assert found[0].kind == "definition" and found[0].path == definition[0], found
    calls = {(r.path, r.line) for r in found if r.kind == "call"}
    expected = {
        (rel, 1 + next(i for i, ln in enumerate(text.splitlines()) if f"{name}(" in ln))
        for rel, text in callers
    }
    assert calls == expected


def test_symbols_inside_a_class_that_is_one_chunk(engine, tmp_path: Path) -> None:
    """A small class is one chunk named for the class; its methods are still found by name or
    by dotted path (``defs``), with their own lines and signature, once each; a method split into
    several chunks is one hit over its whole span."""
    root = tmp_path / "shop"
    root.mkdir()
    (root / "pricing.py").write_text(
        'class Pricing:\n    """Prices."""\n\n    def apply_discount(self, total, rate):\n'
        "        return total * (1 - rate)\n\n    def tax(self, total):\n        return total * 0.2\n"
    )
    body = "\n".join(f"        step_{i} = total * {i}" for i in range(80))
    (root / "ledger.py").write_text(
        f"class Ledger:\n    def settle(self, total):\n{body}\n        return total\n\n"
        "    def close(self):\n        return None\n"
    )
    engine.index(root)
    cb, _ = engine.resolve(root)
    assert {sc.chunk.symbol for sc in cb.store.meta.chunks_for_path("pricing.py")} == {"Pricing"}  # one chunk
    for name in ("apply_discount", "Pricing.apply_discount", "APPLY_DISCOUNT"):
        hits = engine.symbols(root, name).results
        assert [(h.path, h.start_line, h.end_line, h.symbol, h.kind) for h in hits] == [
            ("pricing.py", 4, 5, "Pricing.apply_discount", "method")
        ], name
        assert hits[0].signature == "def apply_discount(self, total, rate):"
    assert engine.symbols(root, "Ledger.apply_discount").results == []
    assert [h.symbol for h in engine.symbols(root, "tax", kind="method").results] == ["Pricing.tax"]
    assert engine.symbols(root, "tax", kind="class").results == []
    settle = engine.symbols(root, "settle").results  # its own chunks: listed from them, once
    assert [(h.symbol, h.start_line, h.end_line) for h in settle] == [("Ledger.settle", 2, 83)], settle
    refs = engine.references(root, "apply_discount").results
    assert refs[0].kind == "definition" and (refs[0].path, refs[0].line) == ("pricing.py", 4)


def test_references_follow_edits_and_pages(engine, xref: Path) -> None:
    engine.index(xref)
    (xref / "py" / "shop" / "refund.py").write_text(
        "from shop.pricing import apply_discount\n\n\ndef refund(x):\n    return apply_discount(x, 5)\n"
    )
    (xref / "py" / "shop" / "invoice.py").unlink()
    engine.update(xref)
    found = engine.references(xref, "apply_discount")
    calls = {f"{r.path}:{r.line}" for r in found.results if r.kind == "call"}
    assert calls == {"py/shop/cart.py:11", "py/shop/refund.py:5"}

    every = engine.references(xref, "apply_discount").results
    seen, offset = [], 0
    while offset is not None:
        page = engine.references(xref, "apply_discount", limit=2, offset=offset)
        assert len(page.results) <= 2
        seen += [(r.path, r.line) for r in page.results]
        offset = page.next_offset
        assert page.has_more == (offset is not None)
    assert seen == [(r.path, r.line) for r in every]

    past = engine.references(xref, "apply_discount", offset=50)
    assert past.results == [] and not past.has_more and "past the end" in past.note
    none = engine.references(xref, "no_such_name_anywhere")
    assert none.results == [] and "no definition or use" in none.note


def test_old_index_upgrades_to_references(engine, xref: Path) -> None:
    engine.index(xref)
    folder = engine.resolve(xref)[0].folder
    engine.close()
    con = sqlite3.connect(folder / "index.sqlite")  # what a version-1 index looked like
    con.execute("DELETE FROM refs")
    con.execute("DELETE FROM defs")  # (version 2 had uses but no definitions table: re-chunked too)
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    from claude_context.engine import Engine

    again = Engine(engine.config)
    try:
        assert "index" in again.references(xref, "Convert").note  # nothing stored yet: says so
        report = again.update(xref)  # what the watcher does at start: re-chunks once
        assert report.files_changed == len([p for p in xref.rglob("*") if p.is_file()])
        assert report.chunks_embedded == 0  # vectors come from the cache
        calls = {r.path for r in again.references(xref, "Convert").results if r.kind == "call"}
        assert calls == {"go/cmd/report/main.go", "go/cmd/server/main.go"}
        assert again.update(xref).files_changed == 0
    finally:
        again.close()


def test_search_pages(engine, repo: Path) -> None:
    # Shaping reads the ranking only until a page is full, so a later hit that would merge into a
    # shown result is merged only if the shaping reads that far: pages agree with the whole list
    # when no such hit sits between them. File-level ranking for file-seeking queries (coherence,
    # saturation) moves one here in this fixture; the paging mechanics are what this test checks.
    engine.config = engine.config.replace(seek_coherence=0.05, seek_saturation_decay=1.0)
    engine.index(repo)
    whole = engine.search(repo, "parse and format values", limit=12)
    assert whole.has_more and whole.next_offset == 12
    first = engine.search(repo, "parse and format values", limit=6)
    second = engine.search(repo, "parse and format values", limit=6, offset=first.next_offset)
    assert first.next_offset == 6 and second.offset == 6
    key = [(r.path, r.start_line) for r in whole.results]
    assert [(r.path, r.start_line) for r in first.results + second.results] == key
    small = engine.search(repo, "parse and format values", limit=10, token_budget=100)
    assert small.truncated and small.has_more and small.next_offset == len(small.results)
    past = engine.search(repo, "parse and format values", offset=400)
    assert past.results == [] and not past.has_more and "past the end" in past.note
    with pytest.raises(UserError, match="offset must be"):
        engine.search(repo, "x", offset=-1)


def test_search_across_codebases(engine, repo: Path, xref: Path, tmp_path: Path) -> None:
    engine.index(repo)
    engine.index(xref)
    both = engine.search(None, "convert an amount between currencies at a rate", limit=10)
    assert set(both.roots) == {str(repo), str(xref)} and both.root == ""
    assert both.results[0].root == str(xref) and both.results[0].path == "go/rates/rates.go"
    assert {r.root for r in both.results} == {str(repo), str(xref)}  # one ranking, both roots
    scores = [r.score for r in both.results]
    assert scores == sorted(scores, reverse=True)
    # the other way round: the fixture's own code wins for its own question
    semver = engine.search([repo, xref], "parse a semantic version string", limit=5)
    assert semver.results[0].root == str(repo) and semver.results[0].path.startswith("crates/")
    # a single codebase's results name it too; filters apply to every root
    one = engine.search(xref, "discount", limit=3)
    assert one.roots == [str(xref)] and all(r.root == str(xref) for r in one.results)
    go = engine.search(None, "convert", limit=10, filters=_filter(languages=["go"]))
    assert go.results and all(r.path.endswith(".go") for r in go.results)
    unknown = tmp_path / "elsewhere"
    unknown.mkdir()
    with pytest.raises(UserError, match=f"not an indexed codebase: {unknown}"):
        engine.search([repo, unknown], "x")


def _filter(**kwargs):
    from claude_context.records import SearchFilter

    return SearchFilter(**kwargs)


# -- project configuration (.claude-context.toml, [tool.claude-context]) ----------------------------


def test_project_config_ignore_drops_a_folder_on_the_next_update(engine, repo: Path) -> None:
    from conftest import files

    engine.index(repo)
    assert any(p.startswith("web/") for p in files(engine, repo))
    (repo / ".claude-context.toml").write_text('ignore = ["web/"]\n')
    report = engine.update(repo, [".claude-context.toml"])  # what the watcher reports for the edit
    assert report.files_deleted == len(list((repo / "web").rglob("*.*")))
    assert not any(p.startswith("web/") for p in files(engine, repo))
    assert ".claude-context.toml" in files(engine, repo)
    assert not engine.search(repo, "request handler", filters=_filter(include_globs=["web/**"])).results
    assert engine.update(repo).files_changed == 0  # applied once, recorded
    # removing the pattern brings the folder back, its vectors from the cache (the one new text
    # embedded is the edited config file itself)
    (repo / ".claude-context.toml").write_text("# nothing ignored\n")
    back = engine.update(repo)
    assert back.files_changed == len(list((repo / "web").rglob("*.*"))) + 1 and back.chunks_embedded == 1


def test_project_config_layers_and_chunk_changes(engine, repo: Path, monkeypatch) -> None:
    from claude_context.errors import NeedsFullIndex

    (repo / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.claude-context]\nextensions = [".cfg"]\nignore = ["game/"]\n'
    )
    (repo / ".claude-context.toml").write_text('ignore = ["scripts/"]\n')  # wins over pyproject's
    engine.index(repo)
    cb = engine.resolve(repo)[0]
    indexed = set(cb.store.meta.file_states())
    assert "notes.cfg" in indexed and not any(p.startswith("scripts/") for p in indexed)
    assert any(p.startswith("game/") for p in indexed)
    # the environment beats the project file
    monkeypatch.setenv("CLAUDE_CONTEXT_IGNORE_PATTERNS", "android/")
    from claude_context.config import load_config

    engine.config = load_config()
    assert cb.chunk_settings().ignore_patterns == ["android/"]
    monkeypatch.delenv("CLAUDE_CONTEXT_IGNORE_PATTERNS")
    engine.config = load_config()
    # a chunking change needs a full run, which re-chunks every file
    (repo / ".claude-context.toml").write_text('ignore = ["scripts/"]\nchunk_size = 700\n')
    with pytest.raises(NeedsFullIndex, match="max_chunk_chars changed"):
        engine.update(repo)
    report = engine.index(repo)
    assert report.files_changed == report.files_total


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (".claude-context.toml", 'ignore = ["a/"]\nsplitter = \n', r"\.claude-context\.toml:2: invalid TOML"),
        (
            ".claude-context.toml",
            'ignore = ["a/"]\nignroe = ["b/"]\n',
            r"\.claude-context\.toml:2: unknown setting 'ignroe'",
        ),
        (
            "pyproject.toml",
            '[tool.claude-context]\n\nmodel = "x"\n',
            r"pyproject\.toml:3: unknown setting 'model'",
        ),
        (".claude-context.toml", 'splitter = "words"\n', r"\.claude-context\.toml: splitter must be"),
    ],
)
def test_bad_project_config_is_a_clear_error(engine, repo: Path, name: str, text: str, message: str) -> None:
    from claude_context.errors import ConfigError

    (repo / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        engine.index(repo)
    assert engine.status(repo).status == "not_indexed"  # nothing was created


# -- agent instruction files (claude-context init) -------------------------------------------------


def test_agent_snippet_is_idempotent_and_keeps_the_users_text(tmp_path: Path) -> None:
    from claude_context.agents import AGENT_FILES, BEGIN, END, install

    (tmp_path / "CLAUDE.md").write_text("# House rules\n\nUse tabs.\n")
    assert install(tmp_path, "claude").action == "updated"
    assert install(tmp_path, "claude").action == "unchanged"
    text = (tmp_path / "CLAUDE.md").read_text()
    assert text.startswith("# House rules\n\nUse tabs.\n") and text.count(BEGIN) == text.count(END) == 1
    assert "find_references" in text and "search_code" in text
    # an old snippet is replaced in place; text after it stays
    (tmp_path / "CLAUDE.md").write_text(f"intro\n{BEGIN}\nold advice\n{END}\noutro\n")
    assert install(tmp_path, "claude").action == "updated"
    text = (tmp_path / "CLAUDE.md").read_text()
    assert "old advice" not in text and text.startswith("intro\n") and text.endswith(f"{END}\noutro\n")
    for agent, name in AGENT_FILES.items():  # every agent gets its own file, created once
        assert install(tmp_path, agent).path == tmp_path / name
        assert (tmp_path / name).read_text().count(BEGIN) == 1
    assert (tmp_path / ".cursor/rules/claude-context.mdc").read_text().startswith("---\n")
    (tmp_path / "GEMINI.md").write_text(f"mine\n{BEGIN}\nhalf a snippet\n")
    with pytest.raises(UserError, match=r"GEMINI\.md:2: the claude-context markers are unpaired"):
        install(tmp_path, "gemini")
    assert (tmp_path / "GEMINI.md").read_text() == f"mine\n{BEGIN}\nhalf a snippet\n"  # untouched


def test_a_new_chunker_version_re_chunks_old_indexes(engine, repo: Path) -> None:
    """An index recorded by an older chunker (before the version was recorded: version 1) is
    re-chunked by the next full run; texts whose chunks did not change come from the cache."""
    import json

    from claude_context.chunkers import CHUNKER_VERSION

    assert CHUNKER_VERSION >= 2
    engine.index(repo)
    meta = engine.resolve(repo)[0].store.meta
    old = json.loads(meta.get_meta("indexed_settings"))
    assert old["chunker"] == CHUNKER_VERSION
    del old["chunker"]
    meta.set_meta(indexed_settings=json.dumps(old), settings=json.dumps(old))
    # an update (the watcher's) goes on with the new chunker for the files it touches, and leaves
    # the rest to the next full run: it neither waits for that run nor records the new version
    some = next(p for p in sorted(repo.rglob("*.py")) if p.is_file())
    some.write_text(some.read_text() + "\n\ndef added_after_upgrade():\n    return 1\n")
    assert engine.update(repo).files_changed == 1
    assert json.loads(meta.get_meta("indexed_settings")).get("chunker", 1) == 1
    # status says so (CLI, MCP): nothing else would tell a user their index predates the upgrade
    note = engine.status(repo).note
    assert f"older chunker (version 1, now {CHUNKER_VERSION})" in note and "re-chunks" in note
    report = engine.index(repo)
    assert report.files_changed == report.files_total and report.chunks_embedded == 0
    assert json.loads(meta.get_meta("indexed_settings"))["chunker"] == CHUNKER_VERSION
    assert engine.status(repo).note == ""
    assert engine.index(repo).files_changed == 0  # recorded: once


def test_a_server_re_chunks_indexes_that_predate_its_chunker(engine, repo: Path) -> None:
    """After an upgrade a server (which keeps indexes fresh) starts the full run itself, once."""
    import json

    from claude_context.chunkers import CHUNKER_VERSION
    from claude_context.mcp_server.run import rechunk_outdated

    engine.index(repo)
    assert rechunk_outdated(engine) == []  # current: nothing to do
    meta = engine.resolve(repo)[0].store.meta
    old = json.loads(meta.get_meta("indexed_settings")) | {"chunker": CHUNKER_VERSION - 1}
    meta.set_meta(indexed_settings=json.dumps(old), settings=json.dumps(old))
    assert rechunk_outdated(engine) == [repo.resolve()]
    job = engine.job(repo)
    job.thread.join(120)
    assert not job.running and job.error is None, job.error
    assert job.report.files_changed == job.report.files_total and job.report.chunks_embedded == 0
    assert engine.status(repo).note == "" and rechunk_outdated(engine) == []
