"""Chunker behaviour: exact spans, coverage, symbol paths, splitting rules, fallbacks.

The polyglot fixture repository (tests/fixtures/polyglot) has one realistic file per language;
EXPECTED.json lists each file's distinctive function as the chunker names it, and is reused by
the end-to-end search tests.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sysconfig
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from claude_context.chunkers import AST_LANGUAGES, ast_pieces, chunk_file, detect_language, valid_pieces
from claude_context.chunkers.text import Lines
from claude_context.records import Chunk

FIXTURES = Path(__file__).parent / "fixtures" / "polyglot"
EXPECTED = json.loads((FIXTURES / "EXPECTED.json").read_text())
FIXTURE_FILES = sorted(
    p.relative_to(FIXTURES).as_posix()
    for p in FIXTURES.rglob("*")
    if p.is_file() and p.name != "EXPECTED.json"
)


def read(rel: str) -> str:
    return (FIXTURES / rel).read_text(encoding="utf-8")


def chunks_of(rel: str, **kwargs) -> list[Chunk]:
    return chunk_file(rel, read(rel), **kwargs)


def by_symbol(chunks: list[Chunk], symbol: str) -> list[Chunk]:
    return [c for c in chunks if c.symbol == symbol]


def one(chunks: list[Chunk], symbol: str) -> Chunk:
    found = by_symbol(chunks, symbol)
    assert len(found) == 1, f"{symbol!r}: {[(c.symbol, c.kind) for c in chunks]}"
    return found[0]


def assert_invariants(chunks: list[Chunk], text: str, max_chars: int) -> None:
    """Exact spans, sorted, no overlap, trimmed, every non-blank line exactly once, size bound."""
    lines = text.splitlines()
    covered = [0] * len(lines)
    prev_end = 0
    for c in chunks:
        assert 1 <= c.start_line <= c.end_line <= len(lines), c
        assert c.content == "\n".join(lines[c.start_line - 1 : c.end_line]), c
        assert c.start_line > prev_end, f"overlap or unsorted at {c.start_line} (previous ended {prev_end})"
        assert lines[c.start_line - 1].strip() and lines[c.end_line - 1].strip(), f"untrimmed {c}"
        assert len(c.content) <= max_chars or c.start_line == c.end_line, (len(c.content), c.symbol)
        for i in range(c.start_line - 1, c.end_line):
            covered[i] += 1
        prev_end = c.end_line
    for i, line in enumerate(lines):
        if line.strip():
            assert covered[i] == 1, f"line {i + 1} covered {covered[i]} times: {line!r}"


# ----------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a/b.py", "python"),
        ("x.pyi", "python"),
        ("lib/response.js", "javascript"),
        ("m.mjs", "javascript"),
        ("m.cjs", "javascript"),
        ("Comp.jsx", "javascript"),
        ("a.ts", "typescript"),
        ("a.mts", "typescript"),
        ("a.cts", "typescript"),
        ("Comp.tsx", "tsx"),
        ("main.go", "go"),
        ("lib.rs", "rust"),
        ("A.java", "java"),
        ("a.kt", "kotlin"),
        ("build.gradle.kts", "kotlin"),
        ("S.scala", "scala"),
        ("x.c", "c"),
        ("x.h", "c"),
        ("x.cc", "cpp"),
        ("x.cpp", "cpp"),
        ("x.cxx", "cpp"),
        ("x.hpp", "cpp"),
        ("x.hh", "cpp"),
        ("x.hxx", "cpp"),
        ("P.cs", "csharp"),
        ("a.rb", "ruby"),
        ("Rakefile", "ruby"),
        ("index.php", "php"),
        ("V.swift", "swift"),
        ("run.sh", "bash"),
        ("x.bash", "bash"),
        ("home/.bashrc", "bash"),
        ("etc/bashrc", "bash"),
        ("init.lua", "lua"),
        ("lib/ecto/repo.ex", "elixir"),
        ("mix.exs", "elixir"),
        ("README.md", "markdown"),
        ("doc.markdown", "markdown"),
        ("UPPER.MD", "markdown"),
        ("package.json", "json"),
        ("ci.yml", "yaml"),
        ("ci.yaml", "yaml"),
        ("pyproject.toml", "toml"),
        ("index.html", "html"),
        ("s.css", "css"),
        ("q.sql", "sql"),
        ("pom.xml", "xml"),
        ("setup.ini", "ini"),
        ("Dockerfile", "dockerfile"),
        ("docker/Dockerfile.dev", "dockerfile"),
        ("Makefile", "makefile"),
        ("docs/index.rst", "rst"),
        ("notes.txt", "txt"),
        ("notes.cfg", None),
        ("weird.zzz", None),
        ("LICENSE", "txt"),
        ("noext", None),
    ],
)
def test_detect_language(path: str, language: str | None) -> None:
    assert detect_language(path) == language


# ----------------------------------------------------------------------------- fixture repo


def test_fixture_repo_has_every_language() -> None:
    languages = {detect_language(p) for p in FIXTURE_FILES}
    required = {
        "python", "javascript", "typescript", "tsx", "go", "rust", "java", "kotlin", "scala", "c", "cpp",
        "csharp", "ruby", "php", "swift", "bash", "lua", "markdown", None,
    }  # fmt: skip
    assert required <= languages
    assert any(p.endswith(".jsx") for p in FIXTURE_FILES)
    assert required - {None} <= {e["language"] for e in EXPECTED}


@pytest.mark.parametrize("entry", EXPECTED, ids=[e["path"] for e in EXPECTED])
def test_expected_symbols(entry: dict) -> None:
    chunks = chunks_of(entry["path"])
    chunk = one(chunks, entry["symbol"])
    assert chunk.kind == entry["kind"]
    assert chunk.language == entry["language"]
    name = entry["symbol"].rsplit(".", 1)[-1].rsplit(" > ", 1)[-1]
    assert name in chunk.signature
    # The query must describe the definition, not copy its identifier.
    assert name.lower() not in entry["query"].lower()


@pytest.mark.parametrize("rel", FIXTURE_FILES)
@pytest.mark.parametrize("max_chars", [1500, 400, 80])
def test_fixture_invariants(rel: str, max_chars: int) -> None:
    text = read(rel)
    chunks = chunk_file(rel, text, max_chars=max_chars)
    assert chunks
    assert_invariants(chunks, text, max_chars)
    lang = detect_language(rel)
    assert {c.language for c in chunks} == {lang or "text"}
    if lang in AST_LANGUAGES:  # structure-aware path, not the fallback
        lines = Lines(text)
        assert valid_pieces(ast_pieces(lang, lines, text, max_chars), lines)
        assert all(c.kind != "text" for c in chunks)


# (path, symbol, kind, start_line, end_line)
SPANS = [
    ("app/slugs.py", "", "module", 1, 7),
    ("app/slugs.py", "SlugRegistry", "class", 10, 22),
    ("app/slugs.py", "slugify", "function", 25, 32),
    ("web/server.js", "res.send", "function", 15, 25),  # JSDoc above included
    ("web/server.js", "app.use", "function", 27, 31),
    ("web/server.js", "exports.parseCookies", "function", 33, 45),
    ("web/server.js", "staticRoot", "function", 47, 47),
    ("web/server.js", "Router", "class", 49, 57),
    ("web/components/CartSummary.jsx", "formatPrice", "function", 6, 12),
    ("web/components/CartSummary.jsx", "CartSummary", "function", 23, 37),
    ("web/api/client.ts", "ClientOptions", "interface", 6, 10),
    ("web/api/client.ts", "Fetcher", "type", 12, 12),
    ("web/api/client.ts", "ParcelClient", "class", 26, 43),
    ("web/api/client.ts", "ParcelStatus", "enum", 45, 49),
    ("web/components/SearchBox.tsx", "Props", "type", 6, 9),
    ("web/components/SearchBox.tsx", "SearchBox", "function", 23, 42),
    ("services/shipping/label.go", "Label", "struct", 13, 18),
    ("services/shipping/label.go", "Label.String", "method", 20, 24),
    ("services/shipping/label.go", "LabelChecksum", "function", 26, 46),  # `//` doc lines included
    ("crates/semver/src/lib.rs", "Version", "struct", 8, 15),  # `///` doc + #[derive] included
    ("crates/semver/src/lib.rs", "ParseError", "enum", 17, 22),
    ("crates/semver/src/lib.rs", "parse_version", "function", 34, 51),
    ("crates/semver/src/lib.rs", "tests", "namespace", 53, 55),
    ("crates/semver/src/lib.rs", "tests.parses_prerelease", "function", 57, 62),
    ("android/src/com/parcelhub/UploadRetrier.java", "UploadRetrier", "class", 6, 14),
    ("android/src/com/parcelhub/UploadRetrier.java", "UploadRetrier.retryWithBackoff", "method", 21, 40),
    ("android/src/com/parcelhub/UploadRetrier.java", "UploadRetrier.PhotoUploader", "interface", 51, 55),
    ("android/src/com/parcelhub/Geo.kt", "GeoPoint", "class", 11, 13),
    ("android/src/com/parcelhub/Geo.kt", "haversineDistance", "function", 15, 26),
    ("android/src/com/parcelhub/Geo.kt", "RouteTracker", "class", 28, 38),
    ("analytics/Stats.scala", "Metric", "trait", 8, 11),
    ("analytics/Stats.scala", "Stats.mean", "method", 16, 18),
    ("analytics/Stats.scala", "Stats.movingAverage", "method", 20, 34),
    ("native/ringbuf.c", "ring_buffer", "struct", 8, 12),
    ("native/ringbuf.c", "ring_status", "enum", 14, 14),
    ("native/ringbuf.c", "ring_buffer_push", "function", 21, 35),  # /* */ block above included
    ("native/matrix.cpp", "linalg", "namespace", 6, 8),
    ("native/matrix.cpp", "linalg.Matrix", "class", 10, 22),
    ("native/matrix.cpp", "linalg.Matrix.multiply", "method", 24, 39),
    ("native/matrix.cpp", "linalg.clamp", "function", 41, 46),  # template line + closing `}` glued
    ("desktop/Invoice.cs", "Shop.Billing", "namespace", 5, 6),
    ("desktop/Invoice.cs", "Shop.Billing.InvoiceCalculator", "class", 9, 13),
    ("desktop/Invoice.cs", "Shop.Billing.InvoiceCalculator.CalculateSalesTax", "method", 25, 35),
    ("desktop/Invoice.cs", "Shop.Billing.PaymentState", "enum", 53, 54),
    ("scripts/mailer.rb", "Notifications", "namespace", 6, 8),
    ("scripts/mailer.rb", "Notifications.valid_address?", "function", 10, 16),
    ("scripts/mailer.rb", "Notifications.Mailer", "class", 18, 35),
    ("web/php/SessionGuard.php", "generate_csrf_token", "function", 11, 23),
    ("web/php/SessionGuard.php", "SessionGuard", "class", 25, 42),
    ("ios/Temperature.swift", "dewPoint", "function", 19, 26),
    ("ios/Temperature.swift", "ReadingSource", "interface", 28, 30),
    ("scripts/backup.sh", "log", "function", 8, 10),
    ("scripts/backup.sh", "rotate_backups", "function", 12, 21),
    ("scripts/backup.sh", "dump_database", "function", 23, 27),
    ("game/loot.lua", "Chest.new", "function", 10, 12),
    ("game/loot.lua", "Chest.open", "function", 14, 17),  # `Chest:open` -> `Chest.open`
    ("game/loot.lua", "M.weighted_choice", "function", 19, 35),
    ("README.md", "Parcelhub > Installation > Linux", "section", 12, 20),
]


@pytest.mark.parametrize(("rel", "symbol", "kind", "start", "end"), SPANS)
def test_concrete_spans(rel: str, symbol: str, kind: str, start: int, end: int) -> None:
    found = [c for c in chunks_of(rel) if c.symbol == symbol and c.kind == kind]
    assert [(c.start_line, c.end_line) for c in found][:1] == [(start, end)]


@pytest.mark.parametrize(
    ("rel", "symbol", "kind"),
    [
        ("crates/semver/src/lib.rs", "Version", "impl"),
        ("ios/Temperature.swift", "WeatherReading", "struct"),
        ("ios/Temperature.swift", "WeatherReading", "impl"),  # extension
        ("analytics/Stats.scala", "DailyCount", "class"),
        ("android/src/com/parcelhub/UploadRetrier.java", "UploadRetrier.UploadRetrier", "method"),
        ("app/ledger.py", "Movement", "class"),
        ("web/components/CartSummary.jsx", "CartLine", "function"),
    ],
)
def test_more_definitions(rel: str, symbol: str, kind: str) -> None:
    assert any(c.symbol == symbol and c.kind == kind for c in chunks_of(rel))


def test_signatures() -> None:
    ledger = chunks_of("app/ledger.py")
    assert one(ledger, "Movement").signature == "class Movement:"  # decorator line skipped
    assert one(ledger, "InventoryLedger.entry_count").signature == "def entry_count(self) -> int:"
    java = chunks_of("android/src/com/parcelhub/UploadRetrier.java")
    retry = one(java, "UploadRetrier.retryWithBackoff")
    assert retry.signature.startswith("public String retryWithBackoff(byte[] photo)")
    assert retry.content.lstrip().startswith("/**")  # Javadoc and annotation are in the span
    assert "@SuppressWarnings" in retry.content
    assert one(chunks_of("app/slugs.py"), "").signature == ""


# ----------------------------------------------------------------------------- splitting rules


def test_small_class_is_one_chunk_with_its_methods() -> None:
    chunks = chunks_of("app/slugs.py")
    registry = one(chunks, "SlugRegistry")
    assert registry.kind == "class"
    assert "def claim" in registry.content and "def __init__" in registry.content
    assert not by_symbol(chunks, "SlugRegistry.claim")


def test_big_class_is_split_into_members() -> None:
    text = read("app/ledger.py")
    chunks = chunk_file("app/ledger.py", text)
    assert_invariants(chunks, text, 1500)
    header = [c for c in chunks if c.symbol == "InventoryLedger" and c.kind == "class"]
    assert len(header) == 2  # header + docstring + `currency`, then `max_history` between methods
    assert header[0].start_line == 21 and header[0].content.startswith("class InventoryLedger:")
    assert 'currency = "EUR"' in header[0].content and "def " not in header[0].content
    assert header[0].context == ""
    assert header[1].content.strip() == "max_history = 10_000"
    assert header[1].context == "class InventoryLedger:"
    methods = ["__init__", "record", "balance", "low_stock", "entry_count", "history", "snapshot"]
    for name in methods:
        member = one(chunks, f"InventoryLedger.{name}")
        assert member.kind == "method"
        assert member.context == "class InventoryLedger:"
        assert "class InventoryLedger" not in member.content
    assert one(chunks, "InventoryLedger.entry_count").content.lstrip().startswith("@property")
    low = one(chunks, "InventoryLedger.low_stock")  # the comment directly above belongs to it
    assert low.content.lstrip().startswith("# Items whose stock fell")
    nested = one(chunks, "InventoryLedger.Snapshot")
    assert nested.kind == "class" and "def __init__" in nested.content
    assert not by_symbol(chunks, "InventoryLedger.Snapshot.__init__")  # fits: kept whole


def test_nested_big_classes_recurse_with_header_chain() -> None:
    body = "\n".join(f"        def m{i}(self):\n            return {i} * {i}\n" for i in range(60))
    text = f"class Outer:\n    x = 1\n\n    class Inner(Base):\n{body}\n    def last(self):\n        pass\n"
    chunks = chunk_file("n.py", text, max_chars=300)
    assert_invariants(chunks, text, 300)
    m0 = one(chunks, "Outer.Inner.m0")
    assert m0.kind == "method"
    assert m0.context == "class Outer:\n    class Inner(Base):"
    assert one(chunks, "Outer.last").context == "class Outer:"
    inner_header = [c for c in chunks if c.symbol == "Outer.Inner" and c.kind == "class"]
    assert inner_header and inner_header[0].content.strip() == "class Inner(Base):"


def test_oversize_function_is_split_at_line_boundaries() -> None:
    text = read("app/ledger.py")
    lines = text.splitlines()
    pieces = by_symbol(chunk_file("app/ledger.py", text), "render_stock_report")
    assert len(pieces) >= 2
    assert all(p.kind == "function" for p in pieces)
    assert all(len(p.content) <= 1500 for p in pieces)
    assert pieces[0].start_line == 74 and lines[73].startswith("def render_stock_report(")
    assert pieces[0].context == ""
    signature = lines[73]  # a one-line signature
    assert signature.endswith("-> str:")
    assert all(p.signature == signature for p in pieces)
    assert all(p.context == signature for p in pieces[1:])
    assert pieces[-1].end_line == 110
    for a, b in itertools.pairwise(pieces):  # contiguous up to blank lines
        assert all(not line.strip() for line in lines[a.end_line : b.start_line - 1])
    assert sum(len(p.content) for p in pieces) > 1500


def test_a_function_a_little_over_budget_leaves_no_tiny_tail() -> None:
    """Two real halves, not a full window and a three-line tail that answers nothing alone."""
    body = "".join(f"    total_{i} = compute_value(item_{i}, factor={i})\n" for i in range(22))
    text = f"def tally(items):\n{body}    return total_0\n"
    assert 1000 < len(text) < 1250
    chunks = chunk_file("t.py", text, max_chars=1000)
    assert_invariants(chunks, text, 1000)
    assert len(chunks) == 2 and all(c.symbol == "tally" for c in chunks)
    assert min(len(c.content) for c in chunks) >= 250


def test_single_overlong_line_is_its_own_piece() -> None:
    long_line = "    x = [" + ", ".join(str(i) for i in range(400)) + "]"
    text = f"def f():\n    a = 1\n{long_line}\n    return a\n"
    chunks = chunk_file("f.py", text, max_chars=200)
    assert_invariants(chunks, text, 200)
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 2), (3, 3), (4, 4)]
    assert all(c.symbol == "f" and c.kind == "function" for c in chunks)
    assert chunks[1].context == "def f():"


def test_nested_functions_stay_inside_a_fitting_function() -> None:
    text = "def outer():\n    def inner():\n        return 1\n    return inner()\n"
    chunks = chunk_file("o.py", text)
    assert [(c.symbol, c.kind, c.start_line, c.end_line) for c in chunks] == [("outer", "function", 1, 4)]


def test_oversize_function_splits_around_nested_functions() -> None:
    filler = "\n".join(f"    value_{i} = compute_something_long({i})" for i in range(30))
    text = f"def outer(a):\n{filler}\n\n    def helper(x):\n        return x + 1\n\n    return helper(a)\n"
    chunks = chunk_file("o.py", text, max_chars=800)
    assert_invariants(chunks, text, 800)
    helper = one(chunks, "outer.helper")
    assert helper.kind == "function" and helper.context == "def outer(a):"
    assert helper.content.strip().startswith("def helper(x):")
    own = by_symbol(chunks, "outer")
    assert own[0].start_line == 1 and own[-1].content.strip() == "return helper(a)"


def test_module_level_code_is_grouped() -> None:
    chunks = chunks_of("app/ledger.py")
    first = chunks[0]
    assert (first.kind, first.symbol, first.start_line, first.end_line) == ("module", "", 1, 10)
    assert "from dataclasses import dataclass" in first.content
    assert "LOW_STOCK_THRESHOLD = 5" in first.content
    assert chunks[-1].kind == "module" and chunks[-1].content.startswith('if __name__ == "__main__":')
    server = chunks_of("web/server.js")
    assert server[0].kind == "module" and "var http = require('http');" in server[0].content
    assert "const DEFAULT_PORT = 8080;" in server[0].content
    assert server[-1].kind == "module" and server[-1].content.count("module.exports.") == 2
    go = chunks_of("services/shipping/label.go")
    assert go[0].kind == "module" and "package shipping" in go[0].content and "var zoneNames" in go[0].content


def test_lone_closing_lines_are_glued_to_the_previous_chunk() -> None:
    ruby = chunks_of("scripts/mailer.rb")
    assert ruby[-1].symbol == "Notifications.Mailer" and ruby[-1].content.endswith("  end\nend")
    cs = chunks_of("desktop/Invoice.cs")
    assert cs[-1].content.endswith("}\n}")
    assert not any(c.content.strip() in {"}", "end", "};"} for c in ruby + cs)


def test_comment_inside_previous_python_block_moves_to_next_definition() -> None:
    text = "def f():\n    x = 1\n    # about g\ndef g():\n    pass\n"
    chunks = chunk_file("c.py", text)
    assert [(c.symbol, c.start_line, c.end_line) for c in chunks] == [("f", 1, 2), ("g", 3, 5)]


def test_doc_block_one_blank_line_above_is_attached() -> None:
    text = "var res = {};\n\n/**\n * Set status.\n */\n\nres.status = function (code) {\n  return code;\n};\n"
    chunks = chunk_file("r.js", text)
    assert [(c.symbol, c.start_line, c.end_line) for c in chunks] == [("", 1, 1), ("res.status", 3, 9)]


# ----------------------------------------------------------------------------- JavaScript forms

JS_FORMS = """\
const express = require('express');
res.send = function send(body) {
  return this.end(body);
};
app.use = function use(fn) {
  return this;
};
exports.escape = function(value) {
  return String(value);
};
module.exports.unescape = (value) => value;
const toArray = (x) => [x];
let load = async function () {
  return 1;
};
Router.prototype.route = function route(path) {
  return path;
};
export default function () {
  return 0;
}
export const answer = () => 42;
export class Widget extends Base {
  render() {
    return null;
  }
}
var proto = module.exports = function (options) {
  return options;
};
const Memo = React.memo(() => null);
"""


def test_javascript_assignment_forms() -> None:
    chunks = chunk_file("lib/forms.js", JS_FORMS)
    assert_invariants(chunks, JS_FORMS, 1500)
    got = {(c.symbol, c.kind, c.start_line) for c in chunks}
    expected = {
        ("", "module", 1),
        ("res.send", "function", 2),
        ("app.use", "function", 5),
        ("exports.escape", "function", 8),
        ("exports.unescape", "function", 11),
        ("toArray", "function", 12),
        ("load", "function", 13),
        ("Router.prototype.route", "function", 16),
        ("default", "function", 19),
        ("answer", "function", 22),
        ("Widget", "class", 23),
        ("proto", "function", 28),
        ("Memo", "function", 31),
    }
    assert got == expected
    assert one(chunks, "res.send").signature == "res.send = function send(body) {"


def test_javascript_calls_passing_a_function() -> None:
    text = """\
defineGetter(req, 'secure', function secure() {
  return this.protocol === 'https';
});
defineGetter(req, 'fresh', function () {
  return true;
});
app.get('/users/:id', function (req, res) {
  res.send(req.params.id);
});
"""
    chunks = chunk_file("lib/request.js", text)
    assert [(c.symbol, c.kind, c.start_line, c.end_line) for c in chunks] == [
        ("secure", "function", 1, 3),
        ("fresh", "function", 4, 6),
        ("", "module", 7, 9),  # a route path is not a name
    ]


def test_python_conditional_definitions_at_module_level() -> None:
    text = """\
import sys

if sys.platform == "win32":
    def auto_wrap(stream):
        return stream
else:
    def auto_wrap(stream):
        return None

try:
    from _speedups import fast
except ImportError:
    def fast(x):
        return x
"""
    chunks = chunk_file("compat.py", text)
    assert_invariants(chunks, text, 1500)
    assert [(c.symbol, c.kind, c.start_line) for c in chunks if c.kind == "function"] == [
        ("auto_wrap", "function", 4),
        ("auto_wrap", "function", 7),
        ("fast", "function", 13),
    ]
    assert chunks[0].kind == "module" and chunks[0].content.endswith('if sys.platform == "win32":')


def test_typescript_and_tsx_forms() -> None:
    ts = """\
import { x } from "y";
export interface Opts { a: number }
export type Id = string;
export enum Color { Red }
namespace Geo {
  export function area(r: number): number { return r * r; }
}
export abstract class Shape<T> {
  abstract size(): number;
}
"""
    chunks = chunk_file("a.ts", ts)
    got = {(c.symbol, c.kind) for c in chunks}
    assert {("Opts", "interface"), ("Id", "type"), ("Color", "enum"), ("Shape", "class")} <= got
    assert ("Geo.area", "function") in got  # namespaces are always split into members
    tsx = "export const Box = ({ a }: P) => <div>{a}</div>;\nfunction Row() { return <tr/>; }\n"
    assert {(c.symbol, c.kind) for c in chunk_file("a.tsx", tsx)} == {
        ("Box", "function"),
        ("Row", "function"),
    }


def test_big_javascript_class_and_object_literal_are_split() -> None:
    methods = "\n".join(f"  method{i}(a, b) {{\n    return a + b + {i};\n  }}" for i in range(40))
    props = ",\n".join(f"  handler{i}: function (req) {{\n    return req.id + {i};\n  }}" for i in range(40))
    text = f"class Big extends Base {{\n  static n = 0;\n{methods}\n}}\n\nmodule.exports = {{\n{props}\n}};\n"
    chunks = chunk_file("big.js", text, max_chars=500)
    assert_invariants(chunks, text, 500)
    m3 = one(chunks, "Big.method3")
    assert m3.kind == "method" and m3.context == "class Big extends Base {"
    h3 = one(chunks, "exports.handler3")
    assert h3.kind == "method" and h3.context == "module.exports = {"


# ----------------------------------------------------------------------------- other languages


def test_language_specific_symbols() -> None:
    cases = {
        "r.go": ("package p\n\nfunc (r *Router[T]) Handle(w int) {\n}\n", "Router.Handle", "method"),
        "lib.rs": ("impl<T> Parser for Foo<T> {\n    fn parse(&self) {}\n}\n", "Foo", "impl"),
        "m.cpp": ("void Foo::bar() {\n}\n", "Foo.bar", "method"),
        "s.rb": ("class A::B\n  def self.make\n  end\nend\n", "A.B", "class"),
        "k.kt": ("interface Shape {\n  fun area(): Double\n}\n", "Shape", "interface"),
        "l.lua": ("function M:update(dt)\nend\n", "M.update", "function"),
        "e.swift": ("extension Foo {\n  func bar() {}\n}\n", "Foo", "impl"),
        "h.h": ("typedef struct {\n  int a;\n} point_t;\n", "point_t", "struct"),
        "g.php": ("<?php\nnamespace App {\n  function helper() {}\n}\n", "App.helper", "function"),
        "t.scala": ("trait Greeter {\n  def greet(n: String): String\n}\n", "Greeter", "trait"),
        "c.cs": ("namespace A.B {\n  class C {\n    void M() {}\n  }\n}\n", "A.B.C", "class"),
    }
    for path, (text, symbol, kind) in cases.items():
        chunks = chunk_file(path, text)
        assert_invariants(chunks, text, 1500)
        assert any(c.symbol == symbol and c.kind == kind for c in chunks), (path, chunks)


ELIXIR = """defmodule Ecto.Repo do
  @moduledoc \"\"\"
  Defines a repository.
  \"\"\"

  @doc \"\"\"
  Fetches a single struct from the data store.
  \"\"\"
  @callback get(queryable :: term, id :: term) :: term | nil

  # a guard clause
  def fetch(repo, id) when is_integer(id) do
    repo.get(id)
  end

  defp private_helper(a), do: a

  defmacro __using__(opts) do
    quote do
      @behaviour Ecto.Repo
    end
  end

  defprotocol Loadable do
    def load(data)
  end

  defimpl Loadable, for: Map do
    def load(map), do: map
  end
end
"""


def test_elixir_definitions() -> None:
    """Elixir spells definitions as macro calls; modules, functions (guards, one-liners, macros),
    behaviour callbacks, protocols and implementations are all definitions, with their docs."""
    chunks = chunk_file("lib/ecto/repo.ex", ELIXIR, max_chars=200)
    assert_invariants(chunks, ELIXIR, 200)
    found = {(c.symbol, c.kind) for c in chunks}
    for expected in [
        ("Ecto.Repo", "class"),
        ("Ecto.Repo.get", "method"),  # @callback
        ("Ecto.Repo.fetch", "method"),  # `when` guard
        ("Ecto.Repo.private_helper", "method"),
        ("Ecto.Repo.__using__", "method"),
        ("Ecto.Repo.Loadable", "interface"),
    ]:
        assert expected in found, (expected, sorted(found))
    callback = next(c for c in chunks if c.symbol == "Ecto.Repo.get")
    assert callback.content.lstrip().startswith("@doc"), callback.content  # its doc is glued to it
    whole = chunk_file("lib/ecto/repo.ex", ELIXIR)  # fits: one chunk, the module
    assert [(c.symbol, c.kind) for c in whole] == [("Ecto.Repo", "class")]


def test_rust_impl_members_when_split() -> None:
    fns = "\n\n".join(
        f"    pub fn op{i}(&self, x: u32) -> u32 {{\n        x * {i}\n    }}" for i in range(30)
    )
    text = f"impl<T: Clone> Engine for Machine<T> {{\n{fns}\n}}\n"
    chunks = chunk_file("m.rs", text, max_chars=400)
    op = one(chunks, "Machine.op7")
    assert op.kind == "method" and op.context == "impl<T: Clone> Engine for Machine<T> {"


def test_body_whose_signature_the_parser_lost_is_a_code_block() -> None:
    """A method whose opening line is gone (half-typed, or blanked) must not turn the rest of the
    file into small module-code groups: its indented lines become function-sized code blocks."""
    body = "\n".join(f"        let v{i} = self.table[{i}] + offset * {i};" for i in range(40))
    good = "\n\n".join(f"    fn get{i}(&self) -> u32 {{\n        self.x + {i}\n    }}" for i in range(3))
    text = (
        "impl Fsm {\n"
        "    fn start(&self) -> u32 {\n        0\n    }\n\n"
        "\n"  # the `fn next_state(` line is missing
        "        &mut self,\n        b: u8,\n    ) -> u32 {\n"
        f"{body}\n"
        "        v0\n    }\n\n"
        f"{good}\n"
        "}\n"
    )
    chunks = chunk_file("dfa.rs", text, max_chars=1000, module_chars=600)
    lost = [c for c in chunks if "let v0 = self.table[0]" in c.content]
    assert len(lost) == 1 and lost[0].kind == "block" and lost[0].symbol == ""
    assert len(lost[0].content) > 600  # a function-sized piece, not a 600-char module group
    assert not any(c.kind == "module" and c.content.startswith("        ") for c in chunks)
    clean = chunk_file("ok.rs", "fn main() {\n    if true {\n        run();\n    }\n}\n")
    assert [c.kind for c in clean] == ["function"]


def test_c_preprocessor_guard_is_transparent() -> None:
    text = "#ifndef X_H\n#define X_H\n\nint add(int a, int b) {\n  return a + b;\n}\n\n#endif\n"
    chunks = chunk_file("x.h", text)
    assert [(c.symbol, c.kind, c.start_line, c.end_line) for c in chunks] == [
        ("", "module", 1, 2),
        ("add", "function", 4, 8),  # the lone #endif is glued to the previous chunk
    ]


# ----------------------------------------------------------------------------- markdown


def test_markdown_sections_and_heading_paths() -> None:
    chunks = chunks_of("README.md")
    assert [c.symbol for c in chunks] == [
        "",
        "Parcelhub",
        "Parcelhub > Installation",
        "Parcelhub > Installation > Linux",
        "Parcelhub > Installation > macOS",
        "Parcelhub > Usage",
        "Parcelhub > Configuration",  # setext heading
    ]
    assert all(c.kind == "section" and c.language == "markdown" for c in chunks)
    linux = one(chunks, "Parcelhub > Installation > Linux")
    assert "# this is a comment inside a fence, not a heading" in linux.content
    assert linux.signature == "### Linux"
    assert linux.context == "# Parcelhub\n## Installation"
    config = one(chunks, "Parcelhub > Configuration")
    assert config.content.startswith("Configuration\n-------------")


def test_markdown_oversize_section_does_not_cut_fences() -> None:
    fence = "```python\n" + "\n".join(f"# step {i}\nvalue_{i} = {i}\n" for i in range(8)) + "```"
    para = "\n\n".join(f"Paragraph {i} explains a detail of the setup in a few words." for i in range(6))
    text = f"# Guide\n\n{para}\n\n{fence}\n\n{para}\n"
    chunks = chunk_file("g.md", text, max_chars=400)
    assert_invariants(chunks, text, 400)
    assert {c.symbol for c in chunks} == {"Guide"}  # `# step` inside the fence is not a heading
    fenced = [c for c in chunks if "```python" in c.content]
    assert len(fenced) == 1 and fenced[0].content.count("```") == 2  # the whole fence in one chunk
    assert all(f"# step {i}" in fenced[0].content for i in range(8))
    assert all(c.context == "# Guide" for c in chunks[1:])


def test_markdown_preamble_and_front_matter() -> None:
    text = "---\ntitle: x\n# not a heading\n---\nIntro text.\n\n## Part\nbody\n"
    chunks = chunk_file("p.md", text)
    assert [(c.symbol, c.start_line, c.end_line) for c in chunks] == [("", 1, 5), ("Part", 7, 8)]


# ----------------------------------------------------------------------------- fallbacks


def test_unknown_extension_uses_text_windows() -> None:
    chunks = chunks_of("notes.cfg")
    assert [(c.kind, c.symbol, c.language, c.start_line, c.end_line) for c in chunks] == [
        ("text", "", "text", 1, 9)
    ]


def test_text_windows_prefer_blank_lines_and_cap_lines() -> None:
    paragraphs = "\n\n".join("\n".join(f"line {p}.{i} of some notes" for i in range(8)) for p in range(20))
    chunks = chunk_file("notes.log", paragraphs, max_chars=500)
    assert_invariants(chunks, paragraphs, 500)
    lines = paragraphs.splitlines()
    for c in chunks[:-1]:
        assert not lines[c.end_line].strip()  # every window ends right before a blank line
    many = "\n".join(f"{i}" for i in range(500))
    windows = chunk_file("n.log", many, max_chars=100_000)
    assert max(c.end_line - c.start_line + 1 for c in windows) <= 60


def test_splitter_text_forces_line_windows() -> None:
    text = read("app/ledger.py")
    chunks = chunk_file("app/ledger.py", text, splitter="text")
    assert chunks and all(c.kind == "text" and c.symbol == "" for c in chunks)
    assert {c.language for c in chunks} == {"python"}
    assert_invariants(chunks, text, 1500)


def test_language_override() -> None:
    chunks = chunk_file("script", "def f():\n    return 1\n", language="python")
    assert [(c.symbol, c.kind, c.language) for c in chunks] == [("f", "function", "python")]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n"])
def test_empty_text_gives_no_chunks(text: str) -> None:
    assert chunk_file("a.py", text) == []
    assert chunk_file("a.md", text) == []
    assert chunk_file("a.unknown", text) == []


GARBAGE = {
    "binary": bytes(random.Random(7).randrange(256) for _ in range(6000)).decode("latin-1"),
    "nul_bytes": "class A:\n  \x00\x00 def f(): pass\n" * 20,
    "surrogates": 'def f():\n    x = "\udcff\ud800"\n' * 20,
    "separators": "def a():\n    pass\n\x0c\ndef b():\n    pass\n\u2028def c(): pass\n\x85x = 1\n",
    "cr_only": "def a():\r    pass\r\rdef b():\r    return 1\r",
    "unbalanced": "class A {\n  void f() {\n    if (x) {\n" * 40,
    "minified": "function a(){return 1};var b=function(){};" * 300,
    "deep_nesting": "".join("    " * i + f"def f{i}():\n" for i in range(150)) + "    " * 150 + "pass\n",
    "unicode": 'def naïve_函数():\n    return "ü" * 3  # ö\n' * 30,
}
GARBAGE_PATHS = [
    *("x.py", "x.js", "x.tsx", "x.go", "x.rs", "x.java", "x.c", "x.cpp", "x.rb", "x.lua", "x.ex", "x.md"),
]


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_never_raises(name: str) -> None:
    text = GARBAGE[name]
    for path in GARBAGE_PATHS:
        chunks = chunk_file(path, text, max_chars=300)
        assert chunks
        assert_invariants(chunks, text, 300)


def test_parse_timeout_falls_back_to_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from claude_context.chunkers import treesitter

    monkeypatch.setattr(treesitter, "_PARSE_SECONDS", -1.0)
    text = read("app/slugs.py")
    chunks = chunk_file("app/slugs.py", text)
    assert chunks and all(c.kind == "text" for c in chunks)
    assert_invariants(chunks, text, 1500)
    monkeypatch.undo()
    assert one(chunk_file("app/slugs.py", text), "slugify").kind == "function"  # parser still usable


def test_thread_safety() -> None:
    paths = [p for p in FIXTURE_FILES if detect_language(p) in AST_LANGUAGES] * 4
    expected = {p: chunks_of(p) for p in set(paths)}

    def work(rel: str) -> tuple[str, list[Chunk], int]:
        return rel, chunks_of(rel), threading.get_ident()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, paths))
    assert all(chunks == expected[rel] for rel, chunks, _ in results)


# ----------------------------------------------------------------------------- real code


def _transformers_sample(n: int = 200) -> list[Path]:
    root = Path(sysconfig.get_paths()["purelib"]) / "transformers"
    if not root.is_dir():
        return []
    files = sorted(root.rglob("*.py"))
    step = max(1, len(files) // n)
    return files[::step][:n]


TRANSFORMERS = _transformers_sample()


@pytest.mark.skipif(not TRANSFORMERS, reason="transformers is not installed")
def test_invariants_on_real_python_files() -> None:
    kinds: set[str] = set()
    for path in TRANSFORMERS:
        text = path.read_text(encoding="utf-8")
        rel = os.path.relpath(path, TRANSFORMERS[0].parents[1])
        lines = Lines(text)
        if text.strip():
            assert valid_pieces(ast_pieces("python", lines, text, 1500), lines), rel
        chunks = chunk_file(rel, text)
        assert_invariants(chunks, text, 1500)
        kinds.update(c.kind for c in chunks)
    assert {"module", "class", "method", "function"} <= kinds


def test_a_comment_alone_between_definitions_joins_a_neighbour() -> None:
    """A section rule or a note one blank line above a method is no result of its own (alone it
    was a one-line chunk named after its class, found by the class's name); it joins the method
    after it, or the chunk before it at the end of a class, and every line stays covered."""
    body = "\n".join(
        [
            "class Store:",
            '    """Keeps rows."""',
            "",
            "    # ------------------------------------------------ reading",
            "",
            "    def get(self, key):",
            "        return self.rows[key]",
            "",
            "    # ------------------------------------------------ writing",
            "",
            "    def put(self, key, value):",
            "        self.rows[key] = value",
            "",
            "    # TODO: a delete that keeps tombstones",
            "",
        ]
    )
    padding = "\n".join(f"X{i} = {i}  # so the class is split into its members" for i in range(3))
    src = body + "\n\n" + padding
    chunks = chunk_file("store.py", src, max_chars=200, module_chars=200)
    for c in chunks:  # no chunk of comments alone
        assert any(ln.strip() and not ln.strip().startswith("#") for ln in c.content.splitlines())
    head = next(c for c in chunks if c.start_line == 1)
    put = next(c for c in chunks if c.symbol == "Store.put")
    assert "reading" in head.content  # the first rule: with the class's own lines
    assert put.start_line == 9  # the second: with the method after it
    assert "tombstones" in put.content  # the class's last note: the method before, not X0 after
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    wanted = {n for n, ln in enumerate(src.splitlines(), 1) if ln.strip()}
    assert wanted <= covered
