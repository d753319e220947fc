"""The Milvus store on Milvus Lite (embedded): the engine suite run on the second backend, plus
what only a remote store has (filters as expressions, collection identity, unreachable servers).

The engine tests are the ones in ``test_engine.py``, collected here a second time: this module
overrides the ``config`` fixture they get their engine from, so each runs once per store.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Store-level and end-to-end engine tests, re-run with store = milvus (see module docstring).
from test_engine import (  # noqa: F401 - collected here with this module's ``config``
    test_bad_inputs,
    test_file_deleted_mid_index,
    test_filters,
    test_incremental_modify_add_delete_rename,
    test_index_then_search_each_language,
    test_modes_keyword_semantic,
    test_result_shape_and_line_numbers,
    test_status_list_clear,
    test_subfolder_search,
)

from claude_context.errors import StoreError, StoreUnavailableError
from claude_context.index.base import KeywordDoc
from claude_context.index.registry import IndexOptions
from claude_context.index.remote.milvus import SIDECAR, MilvusChunkIndex
from claude_context.index.remote.milvus_rows import collection_name, filter_expression, quote
from claude_context.index.remote.milvus_server import ServerInfo, vector_index_choices
from claude_context.records import SearchFilter

DEAD_URI = "http://127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture
def config(home: Path):
    """The engine fixtures' config, with Milvus Lite as the store (one .db per codebase folder)."""
    from claude_context.config import load_config

    return load_config().replace(store="milvus")


def _milvus(engine, repo) -> MilvusChunkIndex:
    store = engine.resolve(repo)[0].store
    index = store.chunk_index()
    assert isinstance(index, MilvusChunkIndex)
    return index


def _engine(config, warm_cache: Path, **changes):
    from claude_context.engine import Engine

    cfg = config.replace(**changes)
    if not cfg.cache_path.exists():
        shutil.copy(warm_cache, cfg.cache_path)
    return Engine(cfg)


# -- filters and escaping -------------------------------------------------------------------------


def test_quote_escapes_every_way_out_of_a_literal():
    assert quote('a"b') == '"a\\"b"'
    assert quote("a\\b") == '"a\\\\b"'
    assert quote("a\nb\r\tc") == '"a\\nb\\r\\tc"'
    assert quote('x\\" or id > 0 or "') == '"x\\\\\\" or id > 0 or \\""'


def test_filter_expression_shapes():
    assert filter_expression(None, None) is None
    assert filter_expression(SearchFilter(), None) is None
    sub = filter_expression(SearchFilter(subfolder="/web/api/"), {"web/api/a.py"})
    assert sub == '(path >= "web/api/" and path < "web/api0")'
    both = filter_expression(SearchFilter(extensions=["PY", ".ts", ""], languages=["Go"]), {"x.py"})
    assert both == 'extension in [".py", ".ts"] and language in ["go"]'
    # globs have no Milvus equivalent: the resolved paths (one per file) are sent instead
    globbed = filter_expression(SearchFilter(include_globs=["web/**"]), {"web/b.js", 'web/"q".js'})
    assert globbed == 'path in ["web/\\"q\\".js", "web/b.js"]'


def test_hostile_paths_and_filter_values(engine, repo):
    """Quotes, backslashes, wildcards and expression syntax in paths and filter values neither
    break the Milvus expression nor widen the scope."""
    odd = {
        'evil") or (path != "/inject.py': "def quote_injection_probe():\n    return 1\n",
        "back\\slash/b.py": "def backslash_probe():\n    return 2\n",
        "under_score/u.py": "def underscore_probe():\n    return 3\n",
        "underXscore/u.py": "def underscore_probe_twin():\n    return 4\n",
        "pct%/p.py": "def percent_probe():\n    return 5\n",
    }
    for rel, text in odd.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    engine.index(repo)

    inject = 'evil") or (path != "/inject.py'
    hits = engine.search(repo, "probe", filters=SearchFilter(include_globs=[inject]), limit=20).results
    assert [h.path for h in hits] == [inject]
    for folder in ('evil") or (path != "', "back\\slash", "under_score", "pct%"):
        res = engine.search(repo, "probe", filters=SearchFilter(subfolder=folder), limit=20).results
        assert res and {r.path.split("/")[0] for r in res} == {folder}, (folder, res)

    # values the engine would reject before Milvus (no file matches) still reach it safely here
    index = _milvus(engine, repo)
    for bad in ('py" or path != "', "py\\", 'go"]) or (id > 0'):
        assert index.search_hybrid("probe", None, 10, {"x.py"}, SearchFilter(extensions=[bad])) == []
        assert index.search_hybrid("probe", None, 10, {"x.py"}, SearchFilter(languages=[bad])) == []


# -- the backend is really used -------------------------------------------------------------------


def test_searches_run_in_milvus(engine, repo, monkeypatch):
    """Score fusion (the default): Milvus runs one dense and one BM25 search with our filters and
    the engine fuses them as for the local store; RRF: one native ``hybrid_search``. Never the
    engine's fallback (an id list per search)."""
    engine.index(repo)
    index = _milvus(engine, repo)
    client = index._ensure()
    calls: list[str] = []
    for name in ("hybrid_search", "search"):
        real = getattr(client, name)
        monkeypatch.setattr(client, name, lambda *a, _n=name, _r=real, **kw: calls.append(_n) or _r(*a, **kw))

    def engine_fallback(*_a, **_kw):
        raise AssertionError("the engine searched through the fallback API")

    monkeypatch.setattr(MilvusChunkIndex, "search_dense", engine_fallback)
    monkeypatch.setattr(MilvusChunkIndex, "search_keyword", engine_fallback)
    top = engine.search(repo, "parse a semantic version string", limit=3).results
    assert top[0].path == "crates/semver/src/lib.rs" and calls == ["search", "search"]
    assert engine.search(repo, "slugify", mode="keyword").results
    assert engine.search(repo, "slug of a title", mode="semantic").results
    assert calls == ["search"] * 4  # one search for each single mode
    engine.config = engine.config.replace(fusion="rrf", keyword_weight=1.0)  # RRFRanker: equal weights
    top = engine.search(repo, "parse a semantic version string", limit=3).results
    assert top[0].path == "crates/semver/src/lib.rs" and calls[4:] == ["hybrid_search"]
    stats = engine.status(repo).index
    assert stats["store"] == "milvus" and stats["available"] and stats["vector_index"] == "milvus:HNSW"
    assert stats["collection"] == collection_name(index.folder)


def test_schema_fields_and_bm25_function(engine, repo):
    engine.index(repo)
    index = _milvus(engine, repo)
    client = index._ensure()
    desc = client.describe_collection(index.collection)
    names = {f["name"] for f in desc["fields"]}
    assert {
        "id",
        "content",
        "dense",
        "sparse",
        "path",
        "language",
        "extension",
        "symbol",
        "kind",
        "start_line",
        "end_line",
        "content_hash",
    } <= names
    assert [f["type"].name for f in desc["functions"]] == ["BM25"]
    store = engine.resolve(repo)[0].store
    sc = store.meta.chunks_for_path("app/slugs.py")[0]
    row = client.query(index.collection, filter=f"id == {sc.id}", output_fields=["*"])[0]
    assert row["path"] == "app/slugs.py" and row["language"] == "python" and row["extension"] == ".py"
    assert (row["start_line"], row["end_line"]) == (sc.chunk.start_line, sc.chunk.end_line)
    assert row["content"] == sc.chunk.content and row["kind"] == sc.chunk.kind


# -- incremental updates, repair, identity ----------------------------------------------------------


def test_keyword_rows_first_vectors_later(tmp_path):
    """Progressive indexing: a chunk is keyword-searchable before its vector exists, dense search
    never returns its placeholder, and the vector attaches to the row later."""
    index = MilvusChunkIndex(tmp_path, 4, uri=str(tmp_path / "p.db"))
    try:
        docs = [
            KeywordDoc(1, "a.py", "alpha", "def alpha_walrus(): pass", kind="function"),
            KeywordDoc(2, "b.py", "beta", "def beta_pelican(): pass", kind="function"),
        ]
        index.add(docs[:1], np.array([[1.0, 0, 0, 0]], np.float32))
        index.add_keywords(docs[1:])
        assert index.ids() == ({1}, {1, 2})
        assert [h.id for h in index.search_keyword("pelican", 5, None)] == [2]
        near_b = np.array([0, 1.0, 0, 0], np.float32)
        assert [h.id for h in index.search_dense(near_b, 5, None)] == [1]
        index.add_vectors([2], near_b[None, :])
        assert index.ids() == ({1, 2}, {1, 2})
        assert index.search_dense(near_b, 5, None)[0].id == 2
        assert [h.id for h in index.search_keyword("pelican", 5, None)] == [2]  # text kept
        # repair order: a vector before its row, then the row
        index.add_vectors([3], np.array([[0, 0, 1.0, 0]], np.float32))
        index.add_keywords([KeywordDoc(3, "c.py", "gamma", "def gamma_heron(): pass")])
        assert index.ids() == ({1, 2, 3}, {1, 2, 3})
        index.commit(7, durable=True)
        assert index.generation() == 7
        assert index.stats()["vectors"] == 3
    finally:
        index.close()


def test_bm25_scores_use_the_local_parameters(tmp_path):
    """Milvus scores keyword matches with tantivy's BM25 (k1 = 1.2, b = 0.75) over the same tokens."""
    import math

    from claude_context.index.remote.milvus_rows import bm25_text

    index = MilvusChunkIndex(tmp_path, 4, uri=str(tmp_path / "k.db"))
    try:
        docs = [
            KeywordDoc(1, "a.py", "", "walrus walrus tusk"),
            KeywordDoc(2, "b.py", "", "walrus pelican heron gull tern skua"),
            KeywordDoc(3, "c.py", "", "pelican"),
        ]
        index.add(docs, np.eye(3, 4, dtype=np.float32))
        toks = [bm25_text(d).split() for d in docs]
        avgdl = sum(map(len, toks)) / 3
        idf = math.log((3 - 2 + 0.5) / (2 + 0.5) + 1)

        def expected(t: list[str]) -> float:
            tf = t.count("walrus")
            return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(t) / avgdl))

        hits = index.search_keyword("walrus", 5, None)
        assert [h.id for h in hits] == [1, 2]
        assert [round(h.score, 4) for h in hits] == [round(expected(toks[0]), 4), round(expected(toks[1]), 4)]
    finally:
        index.close()


def test_repair_after_crash_by_id_difference(engine, repo):
    """Rows lost or left over in Milvus (a crash between SQLite and Milvus) are repaired by the next
    run from SQLite and the embedding cache, without embedding anything."""
    engine.index(repo)
    store = engine.resolve(repo)[0].store
    index = _milvus(engine, repo)
    db_ids = store.meta.chunk_ids()
    lost = sorted(db_ids)[:7]
    index.delete(lost)
    stale = KeywordDoc(10**12, "gone.py", "ghost", "def ghost(): pass", language="python")
    index.add([stale], np.ones((1, index.dim), np.float32) / np.sqrt(index.dim))
    index._set_properties({"claude_context.generation": "-1"})  # the run never finished
    report = engine.index(repo)
    assert report.chunks_embedded == 0
    vec_ids, kw_ids = index.ids()
    assert vec_ids == kw_ids == db_ids
    assert index.generation() == store.meta.generation()


def test_missing_collection_is_reported_then_rebuilt(engine, repo):
    engine.index(repo)
    index = _milvus(engine, repo)
    index._ensure().drop_collection(index.collection)
    index._checked_at = 0.0  # as if RECHECK_S had passed
    # a writer whose collection vanished mid-run must fail, not refill a new one partially and
    # then stamp a generation that claims it is complete
    doc = KeywordDoc(10**12, "late.py", "late", "def late(): pass")
    with pytest.raises(StoreUnavailableError, match="missing"):
        index.add([doc], np.ones((1, index.dim), np.float32) / np.sqrt(index.dim))
    with pytest.raises(StoreUnavailableError, match="missing") as err:
        engine.search(repo, "slugify")
    assert "\n" not in str(err.value)
    assert engine.status(repo).index["available"] is False
    report = engine.index(repo)
    assert report.chunks_embedded == 0 and index.ids()[0] == engine.resolve(repo)[0].store.meta.chunk_ids()
    assert engine.search(repo, "slugify", mode="keyword").results[0].path == "app/slugs.py"


def test_clear_drops_the_collection_and_a_foreign_one_is_rebuilt(config, home, repo, tmp_path, warm_cache):
    """Two local indexes (two homes) share one Milvus Lite file: the collection of a root belongs
    to whichever built it last; the other notices and never searches ids that are not its own."""
    shared = tmp_path / "shared.db"
    a = _engine(config, warm_cache, milvus_uri=str(shared))
    b_home = tmp_path / "other-home"
    b_home.mkdir()
    b = _engine(config, warm_cache, home=b_home, milvus_uri=str(shared))
    try:
        a.index(repo)
        name = _milvus(a, repo).collection
        b.index(repo)  # B's sidecar does not know A's collection: B rebuilds it as its own
        assert b.search(repo, "slugify", mode="keyword").results[0].path == "app/slugs.py"
        _milvus(a, repo)._checked_at = 0.0
        with pytest.raises(StoreUnavailableError, match="not built from this codebase"):
            a.search(repo, "slugify")
        a.index(repo)  # A's next run takes it back, from its own SQLite + cache
        assert a.search(repo, "slugify", mode="keyword").results[0].path == "app/slugs.py"
        a.clear(repo)
        assert name not in _milvus(b, repo)._connect().list_collections()
    finally:
        a.close()
        b.close()


def test_store_switch_reuses_embeddings(config, repo, tmp_path, warm_cache):
    shared = tmp_path / "switch.db"
    engine = _engine(config, warm_cache, milvus_uri=str(shared))
    try:
        engine.index(repo, store_kind="local")
        local_top = [r.path for r in engine.search(repo, "parse a semantic version string").results[:3]]
        store = engine.resolve(repo)[0].store
        to_milvus = engine.index(repo, store_kind="milvus")
        assert to_milvus.chunks_embedded == 0 and to_milvus.files_changed == 0
        assert store.index_options().store == "milvus"
        assert not any(p.name.startswith("bm25") for p in store.folder.iterdir())
        milvus_top = [r.path for r in engine.search(repo, "parse a semantic version string").results[:3]]
        assert milvus_top[0] == local_top[0]
        name = _milvus(engine, repo).collection
        back = engine.index(repo, store_kind="local")
        assert back.chunks_embedded == 0
        assert not (store.folder / SIDECAR).exists()
        assert engine.search(repo, "slugify", mode="keyword").results[0].path == "app/slugs.py"
        probe = MilvusChunkIndex(tmp_path / "probe", 384, uri=str(shared))
        try:  # leaving Milvus dropped the codebase's collection there
            assert name not in probe._connect().list_collections()
        finally:
            probe.close()
    finally:
        engine.close()


def test_quantization_maps_to_milvus_index_types(engine, repo):
    engine.index(repo, quantization="int8")
    assert engine.status(repo).index["vector_index"] == "milvus:HNSW_SQ"
    assert (
        engine.search(repo, "parse a semantic version string").results[0].path == "crates/semver/src/lib.rs"
    )
    with pytest.raises(StoreError, match=r"IVF_RABITQ.*Milvus 2\.6") as err:
        engine.index(repo, quantization="rabitq")  # Milvus Lite has no IVF_RABITQ
    assert "\n" not in str(err.value)
    assert engine.index(repo, quantization="none").chunks_embedded == 0
    assert engine.status(repo).index["vector_index"] == "milvus:HNSW"


def test_vector_index_choices_follow_the_server():
    old, new = ServerInfo("milvus", "v2.5.4", (2, 5)), ServerInfo("milvus", "v2.6.1", (2, 6))
    zilliz = ServerInfo("zilliz", "Zilliz Cloud", None)
    assert [t for t, _ in vector_index_choices("none", old)] == ["HNSW"]
    assert [t for t, _ in vector_index_choices("int8", old)] == ["IVF_SQ8"]
    assert [t for t, _ in vector_index_choices("int8", new)] == ["HNSW_SQ", "IVF_SQ8"]
    assert vector_index_choices("rabitq", old) == []
    assert [t for t, _ in vector_index_choices("rabitq", new)] == ["IVF_RABITQ"]
    assert [t for t, _ in vector_index_choices("rabitq", zilliz)] == ["AUTOINDEX"]


def test_collection_names_and_uris(tmp_path, monkeypatch):
    for folder in ("repo-0123456789ab", "my repo (copy)-aa", "données-ü-1", "9lives-x", "x" * 300):
        name = collection_name(tmp_path / folder)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", name), name
    assert collection_name(tmp_path / "a-1") != collection_name(tmp_path / "a_2")
    monkeypatch.chdir(tmp_path)
    assert IndexOptions(store="milvus", milvus_uri="rel/x.db").milvus_uri == str(tmp_path / "rel/x.db")
    assert IndexOptions(milvus_uri="https://u:p@host:19530").milvus_uri == "https://u:p@host:19530"
    assert "milvus_token" not in IndexOptions(milvus_token="secret").to_dict()


# -- errors: one clear line, never a traceback ------------------------------------------------------


def test_unreachable_server(engine, repo, config, warm_cache):
    from claude_context.engine import Engine

    dead = Engine(config.replace(milvus_uri=DEAD_URI))
    try:
        unreachable = f"cannot reach Milvus at {re.escape(DEAD_URI)}:"
        with pytest.raises(StoreUnavailableError, match=unreachable) as e:
            dead.index(repo)
        assert "\n" not in str(e.value)
        st = dead.status(repo)
        assert st.status == "failed" and "cannot reach" in st.error
    finally:
        dead.close()


@pytest.mark.parametrize(
    ("code", "message", "needle"),
    [
        (1800, "auth check failure, please check username, password or token", "refused the credentials"),
        (100, "collection not found[collection=cc_x]", "is missing from"),
        (
            2,
            "Fail connecting to server on h:19530, illegal connection params or server unavailable",
            "cannot reach",
        ),
        (1, "rpc deadline exceeded\nsecond line", "did not answer"),
        (65535, "some odd failure\nwith a second line and tok-123", "some odd failure with a second line"),
    ],
)
def test_error_translation(tmp_path, code, message, needle):
    from pymilvus.exceptions import MilvusException

    index = MilvusChunkIndex(tmp_path, 8, uri="https://h:19530", token="tok-123")
    err = index._translate(MilvusException(code=code, message=message))
    assert isinstance(err, StoreError) and needle in str(err)
    assert "\n" not in str(err) and "tok-123" not in str(err)


def test_lite_file_held_by_another_process(engine, repo):
    engine.index(repo)
    index = _milvus(engine, repo)
    db = Path(index.uri)
    store = engine.resolve(repo)[0].store
    store.close()  # releases this process's embedded server and its lock
    fd = os.open(db / "LOCK", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # an flock on another descriptor = another owner
    try:
        with pytest.raises(StoreUnavailableError, match="open in another process") as err:
            engine.search(repo, "slugify")
        assert "\n" not in str(err.value)
        st = engine.status(repo)
        assert st.index["available"] is False and "another process" in st.index["error"]
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert engine.search(repo, "slugify", mode="keyword").results


def test_cli_prints_one_line(home, repo, warm_cache):
    shutil.copy(warm_cache, home / "embeddings.sqlite")
    exe = shutil.which("claude-context")
    cmd = [exe] if exe else [sys.executable, "-m", "claude_context.cli"]
    proc = subprocess.run(
        [*cmd, "index", str(repo), "--store", "milvus", "--milvus-uri", DEAD_URI, "--json"],
        env=dict(os.environ, CLAUDE_CONTEXT_HOME=str(home), COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cannot reach Milvus at http://127.0.0.1:1" in lines[0], proc.stderr
    st = json.loads(
        subprocess.run(
            [*cmd, "status", str(repo), "--json"],
            env=dict(os.environ, CLAUDE_CONTEXT_HOME=str(home)),
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout
    )
    assert st["status"] == "failed" and st["index"]["available"] is False


def test_mcp_server_stays_up_and_reports_the_store(home, repo, warm_cache):
    """An unreachable Milvus makes the tools fail with one clear line; the server keeps serving."""
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    shutil.copy(warm_cache, home / "embeddings.sqlite")
    env = dict(
        os.environ,
        CLAUDE_CONTEXT_HOME=str(home),
        CLAUDE_CONTEXT_STORE="milvus",
        CLAUDE_CONTEXT_MILVUS_URI=DEAD_URI,
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    serve = ["-m", "claude_context.cli", "serve"]
    params = StdioServerParameters(command=sys.executable, args=serve, env=env)

    def text(res) -> str:
        return " ".join(getattr(c, "text", "") for c in res.content)

    async def scenario() -> None:
        with anyio.fail_after(180), open(home / "server.log", "w") as log:
            async with stdio_client(params, errlog=log) as (r, w), ClientSession(r, w) as s:
                await s.initialize()
                res = await s.call_tool("index_codebase", {"path": str(repo), "wait": True})
                assert res.is_error and "cannot reach Milvus at http://127.0.0.1:1" in text(res), text(res)
                st = await s.call_tool("get_indexing_status", {"path": str(repo)})
                assert not st.is_error and "cannot reach Milvus" in text(st), text(st)
                found = await s.call_tool("search_code", {"path": str(repo), "query": "slugify"})
                assert found.is_error and "cannot reach Milvus" in text(found), text(found)
                assert "Traceback" not in text(found)
                assert not (await s.call_tool("list_codebases", {})).is_error

    anyio.run(scenario)
