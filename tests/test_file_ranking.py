"""File-level and query-type ranking (search/boosts.py) through the real engine on small repos:
a named symbol's definition first, a file named by the question's words, several files in the
top results, copies and shims below the code they mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from claude_context.engine import Engine
from claude_context.search import boosts
from claude_context.search.retrieve import definitions

FILLER = "\n".join(f"    value_{i} = compute_{i}(value_{i - 1})" for i in range(1, 25))


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


@pytest.fixture
def engine(config, model):
    eng = Engine(config)
    yield eng
    eng.close()


def test_query_analysis_symbols_and_words():
    bare = boosts.analyze("Sinatra::Base")
    assert bare.symbol_query and {"Sinatra::Base", "Base"} <= bare.names
    assert boosts.analyze("basic_format_args").symbol_query
    nl = boosts.analyze("how does safeParse return a ZodError without throwing")
    assert not nl.symbol_query and nl.names == {"safeParse", "ZodError"}
    assert "throwing" in nl.words and "how" not in nl.words
    assert boosts.analyze("Return the default value for the parameter.").names == frozenset()


def test_bare_symbol_ranks_its_definition_before_uses(engine, tmp_path):
    uses = "\n".join(
        f"def use_{i}():\n    group = RouterGroup()\n    return RouterGroup.add(group)\n" for i in range(8)
    )
    root = _write(
        tmp_path / "repo",
        {
            "app.py": uses,
            "tests/test_routes.py": uses.replace("use_", "test_use_"),
            "routing/group.py": "class RouterGroup:\n    '''Routes under one prefix.'''\n\n"
            "    def add(self, route):\n        self.routes.append(route)\n",
        },
    )
    engine.index(root)
    top = engine.search(root, "RouterGroup", limit=5).results[0]
    assert top.path == "routing/group.py" and top.start_line == 1


def test_definitions_found_by_name_within_scope(engine, tmp_path):
    root = _write(
        tmp_path / "repo",
        {
            "a/model.py": "class StaticModel:\n    def encode(self, texts):\n        return texts\n",
            "b/other.py": "def helper():\n    return StaticModel()\n",
        },
    )
    engine.index(root)
    meta = engine.resolve(root)[0].store.meta
    rows = meta.get_chunks([h.id for h in definitions(meta, "how StaticModel encodes", None)])
    assert {sc.chunk.path for sc in rows.values()} == {"a/model.py"}
    assert definitions(meta, "StaticModel", {"b/other.py"}) == []
    assert definitions(meta, "load the model", None) == []  # no identifier: no lookup


def test_words_naming_a_file_lift_it(engine, tmp_path):
    root = _write(
        tmp_path / "repo",
        {
            "render/json.go": "package render\n\nfunc (r JSON) Render(w Writer) error {\n"
            "\treturn writeJSON(w, r.Data)\n}\n",
            "context.go": "package gin\n\n// JSON writes the struct as JSON into the response body.\n"
            "func (c *Context) JSON(code int, obj any) {\n\tc.Render(code, render.JSON{Data: obj})\n}\n",
            "errors.go": "package gin\n\n// Error rendering for the response.\nfunc (e Error) JSON() any {\n"
            "\treturn e.Meta\n}\n",
        },
    )
    engine.index(root)
    results = engine.search(root, "JSON response rendering", limit=3).results
    assert results[0].path == "render/json.go"


def test_top_results_cover_several_files(config, model, tmp_path):
    """Saturation: on for queries that seek files, off for doc sentences (it costs their chunk
    hit@10, bench/README.md)."""
    big = "\n\n".join(
        f"def parse_config_value_{i}(text):\n    # Parse one config value.\n"
        f"    return text.split('=')[{i}]\n\n"
        f"def unrelated_{i}():\n{FILLER}\n"
        for i in range(8)
    )
    root = _write(
        tmp_path / "repo",
        {
            "parsing.py": big,
            "config.py": "def load_config(path):\n    # Parse the config file.\n    return {}\n",
            "settings.py": "def parse_settings(text):\n    '''Parse config settings.'''\n    return text\n",
        },
    )
    for decay, files in ((1.0, 1), (0.5, 3)):
        # a topic phrase seeks files (seek_saturation_decay); a doc sentence does not (saturation_decay)
        engine = Engine(config.replace(seek_saturation_decay=decay, saturation_decay=decay))
        engine.index(root)
        results = engine.search(root, "parse config value", limit=5).results
        assert len({r.path for r in results[:4]}) >= files
        results = engine.search(root, "Parse one config value.", limit=5).results
        engine.close()
        assert len({r.path for r in results[:4]}) >= files
    engine = Engine(config)  # shipped: saturation for the topic, not for the sentence
    engine.index(root)
    topic = engine.search(root, "parse config value", limit=5).results
    sentence = engine.search(root, "Parse one config value.", limit=5).results
    engine.close()
    assert len({r.path for r in topic[:4]}) >= 3 and len({r.path for r in sentence[:4]}) == 1


def test_copies_and_shims_rank_below_the_source(engine, tmp_path):
    body = (
        "def retry_request(session, url, attempts=3):\n"
        "    '''Retry a request with backoff.'''\n    return session.get(url)\n"
    )
    root = _write(
        tmp_path / "repo",
        {
            "examples/retry_demo.py": body.replace("'''Retry", "'''Example: retry"),
            "compat/legacy_retry.py": body.replace("'''Retry", "'''Old: retry"),
            "client/retry.py": body,
        },
    )
    engine.index(root)
    assert engine.search(root, "retry a request with backoff", limit=3).results[0].path == "client/retry.py"
    assert boosts.path_prior("pkg/__init__.py", 0.5, 0.3, 0.7) == 0.5
    assert boosts.path_prior("types/index.d.ts", 1.0, 1.0, 0.7) == 0.7
    assert boosts.path_prior("src/client.py", 0.5, 0.3, 0.7) == 1.0


def _row(cid: int, path: str, symbol: str = "", kind: str = "function", start: int = 1):
    from claude_context.index.truth.metadata import StoredChunk
    from claude_context.records import Chunk

    chunk = Chunk(path, "python", start, start + 2, symbol, kind, f"code of {symbol or path}")
    return StoredChunk(cid, chunk, f"k{cid}")


def _order(query: str, rows: dict, dense: list[tuple[int, float]], **knobs) -> list[int]:
    from claude_context.index.base import Hit
    from claude_context.search.ranking import RankSettings, fuse

    rows = rows | {99: _row(99, "zz/unrelated.py", "zz")}  # an anchor: min-max keeps the others' margins
    hits = [Hit(i, s) for i, s in dense] + [Hit(99, 0.0)]
    ranked = fuse(query, [("dense", hits)], rows, RankSettings(**knobs))
    return [sc.id for sc, _ in ranked if sc.id != 99]


def test_definition_boost_beats_stronger_uses():
    rows = {1: _row(1, "app.py", "use_group"), 2: _row(2, "routing/group.py", "RouterGroup", "class", 10)}
    dense = [(1, 0.9), (2, 0.5)]
    assert _order("RouterGroup", rows, dense, definition_boost=0.0)[0] == 1  # off: the use wins
    assert _order("RouterGroup", rows, dense, definition_boost=1.0)[0] == 2
    # embedded in a sentence: half strength, still enough here
    assert (
        _order("where is RouterGroup built", rows, dense, definition_boost=1.0, definition_embedded=0.5)[0]
        == 2
    )
    assert (
        _order("where is RouterGroup built", rows, dense, definition_boost=1.0, definition_embedded=0.0)[0]
        == 1
    )
    # a chunk that only uses the name (kind module) is no definition
    rows[2] = _row(2, "routing/group.py", "RouterGroup", "module", 10)
    assert _order("RouterGroup", rows, dense, definition_boost=1.0)[0] == 1


def test_a_file_close_to_the_query_as_a_whole_lifts_its_best_chunk():
    """The "files" ranking (each candidate's file closeness, StaticVectors.file_scores) lifts
    the best chunk of a file by static_file_weight x the top score x its closeness; the file's
    other chunks and files without closeness keep their scores."""
    from claude_context.index.base import Hit
    from claude_context.search.ranking import RankSettings, fuse

    rows = {
        1: _row(1, "client.py", "request"),
        2: _row(2, "payload.py", "Payload", start=10),
        3: _row(3, "payload.py", "BytesPayload", start=60),
        99: _row(99, "zz/unrelated.py", "zz"),
    }
    dense = [Hit(1, 0.9), Hit(2, 0.7), Hit(3, 0.6), Hit(99, 0.0)]
    files = [("files", [Hit(2, 1.0), Hit(3, 1.0)])]  # payload.py as a whole is the closest file

    def order(weight: float) -> list[int]:
        knobs = RankSettings(static_file_weight=weight, seek_saturation_decay=1.0)
        ranked = fuse("response streaming and payload", [("dense", dense), *files], rows, knobs)
        return [sc.id for sc, _ in ranked]

    assert order(0.0)[:3] == [1, 2, 3]
    assert order(0.5)[:3] == [2, 1, 3]  # the best chunk only: payload.py's second stays below
    scores = {1: 1.0, 2: 0.5, 3: 0.4}
    boosts.lift_files(scores, {1: "a", 2: "b", 3: "b"}, {2: 0.5, 3: 0.5}, 0.2)
    assert scores == {1: 1.0, 2: pytest.approx(0.6), 3: 0.4}


def test_path_boost_and_saturation():
    rows = {
        1: _row(1, "context.go", "JSON"),
        2: _row(2, "render/json.go", "Render", start=40),
        3: _row(3, "context.go", "Bind", start=80),
    }
    dense = [(1, 0.9), (3, 0.85), (2, 0.6)]
    off = {"seek_coherence": 0.05, "seek_saturation_decay": 1.0}
    assert _order("JSON response rendering", rows, dense, **off) == [1, 3, 2]
    assert _order("JSON response rendering", rows, dense, **off, seek_path_boost=1.0)[0] == 2
    assert _order("JSON response rendering", rows, dense, seek_coherence=0.05) == [1, 2, 3]
    # the same knobs for queries that want one definition (a doc sentence)
    assert _order("Render JSON responses.", rows, dense) == [1, 3, 2]
    assert _order("Render JSON responses.", rows, dense, path_boost=1.0)[0] == 2
    assert _order("Render JSON responses.", rows, dense, saturation_decay=0.5) == [1, 2, 3]


def test_query_type_file_seeking():
    def seeks(q: str) -> bool:
        return boosts.seeks_files(q, boosts.analyze(q))

    for q in (
        "how are routes grouped and registered",
        "where is panic recovery middleware",
        "JSON response rendering",
        "Ecto.Query DSL for composing SQL queries",
        "Is it thread-safe?",
    ):
        assert seeks(q), q
    for q in (
        "Return the current context object.",
        "Creates a new router.",
        "RouterGroup",
        "Sinatra::Base",
        "Lookup view by the given `name`",
    ):
        assert not seeks(q), q


def test_path_priors_demote_mirrors():
    rows = {1: _row(1, "pkg/__init__.py", "client"), 2: _row(2, "pkg/client.py", "client")}
    dense = [(1, 0.9), (2, 0.8)]
    assert _order("the client", rows, dense, barrel_weight=1.0)[0] == 1
    assert _order("the client", rows, dense, barrel_weight=0.5)[0] == 2


def test_file_seeking_queries_take_a_wider_candidate_pool() -> None:
    """Questions and topic phrases pool more chunks per retriever (their file evidence sums a
    file's chunks); doc sentences and identifiers keep the pool chunk precision was tuned with."""
    from claude_context.config import Config
    from claude_context.searching import candidates

    config = Config(candidates=150, seek_candidates=200)
    for query in ("how are routes registered", "JSON response rendering", "where is the retry loop?"):
        assert candidates(config, query) == 200, query
    for query in ("Return the current context object.", "RouterGroup", "Sinatra::Base"):
        assert candidates(config, query) == 150, query


def test_keyword_answers_weigh_file_evidence_more(config, model, tmp_path):
    """Without vectors (keyword mode, the first seconds of an index) a file-seeking query takes the
    keyword-only file knobs; in between they follow the semantic coverage."""
    from claude_context.search.ranking import RankSettings, for_coverage

    base = RankSettings(
        seek_coherence=0.3, seek_path_boost=0.0, keyword_seek_coherence=0.6, keyword_seek_path_boost=0.5
    )
    assert for_coverage(base, 1.0) == base
    none, half = for_coverage(base, 0.0), for_coverage(base, 0.5)
    assert (none.dense_weight, none.seek_coherence, none.seek_path_boost) == (0.0, 0.6, 0.5)
    assert half.seek_coherence == pytest.approx(0.45) and half.seek_path_boost == pytest.approx(0.25)
    root = _write(
        tmp_path / "repo",
        {
            "billing/invoice.py": "def compute(lines):\n    return sum(line.price for line in lines)\n",
            "misc.py": "def notes():\n    # invoice handling: numbers, dates, invoice handling rules\n"
            "    return 'invoice handling'\n",
        },
    )
    for boost, first in ((0.0, "misc.py"), (5.0, "billing/invoice.py")):
        eng = Engine(config.replace(keyword_seek_path_boost=boost))
        eng.index(root)
        results = eng.search(root, "where is invoice handling", mode="keyword", limit=2).results
        eng.close()
        assert results[0].path == first, (boost, [r.path for r in results])


def test_a_superseded_version_folder_ranks_below_the_current_one(engine, tmp_path):
    """``src/v3/`` kept beside ``src/v4/`` is the legacy API: the current one answers first, unless
    the query names the old version."""
    assert boosts.superseded(["src/v3/a.ts", "src/v4/core/a.ts", "v2/b.ts", "lib/c.ts"], "ZodType") == {
        "src/v3/a.ts"
    }
    assert boosts.superseded(["src/v3/a.ts", "src/v4/a.ts"], "v3 compatibility errors") == set()
    assert boosts.superseded(["api/v1/a.go", "web/v2/b.go"], "handlers") == set()  # not siblings
    body = "export class ZodType {\n  parse(input: unknown) {\n    return this.safeParse(input);\n  }\n}\n"
    legacy = "// parse\n" + body  # the legacy copy even matches a little better
    others = {
        f"src/util{i}.ts": f"export function helper{i}(input: string) {{\n  return input;\n}}\n"
        for i in range(4)
    }
    root = _write(tmp_path / "repo", {"src/v3/types.ts": legacy, "src/v4/types.ts": body, **others})
    engine.index(root)
    assert engine.search(root, "how does ZodType parse input", limit=2).results[0].path == "src/v4/types.ts"
    assert (
        engine.search(root, "how does the v3 ZodType parse input", limit=2).results[0].path
        == "src/v3/types.ts"
    )


def test_pooled_dense_share_ignores_codebases_without_vectors() -> None:
    """Searching several codebases while one has no vector yet (its first seconds): the others'
    dense rankings keep their weight; keyword mode (no dense ranking anywhere) is 0."""
    from claude_context.searching import dense_share

    assert dense_share([1.0, 0.0]) == 1.0
    assert dense_share([1.0, 0.4, 0.0]) == 0.4
    assert dense_share([0.0, 0.0]) == 0.0
    assert dense_share([1.0]) == 1.0
