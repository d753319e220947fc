"""The static embedding table (embedding/static.py): built once per machine from the bundled model,
used for the chunks still waiting for their transformer vector, and never required: without it
searches answer as before. The real table, distilled by the real model2vec from the bundled
weights (once per machine: the tests' shared model cache keeps it between runs)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from conftest import wait_for

import claude_context.searching as searching
from claude_context.config import load_config
from claude_context.embedding import Embedder, EmbeddingCache
from claude_context.embedding import static as static_mod
from claude_context.engine import Engine
from claude_context.search.centrality import file_centrality

pytestmark = pytest.mark.skipif(not static_mod.model2vec_available(), reason="model2vec is not installed")


@pytest.fixture(scope="session")
def table(model) -> static_mod.StaticTable:
    """The table in the tests' shared model cache (a minute or two of CPU the first time)."""
    from claude_context.config import load_config

    cache = load_config().model_cache_dir
    built = static_mod.wait_for_build(cache, "all-MiniLM-L6-v2", timeout=900)
    assert built is not None, (cache / ".all-MiniLM-L6-v2-static-m2v.log").read_text()
    return built


@pytest.fixture
def static_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_CONTEXT_STATIC_EMBEDDINGS", "1")


@pytest.fixture
def frozen_model(monkeypatch: pytest.MonkeyPatch):
    """The model embeds nothing until the event is set: the state of the first minutes of a cold
    index (every chunk keyword-searchable, no vector yet), held still."""
    go = threading.Event()
    real = Embedder.embed

    def embed(self, texts):
        go.wait(120)
        return real(self, texts)

    monkeypatch.setattr(Embedder, "embed", embed)
    yield go
    go.set()


def test_the_table_is_built_once_under_the_model_cache(table) -> None:
    folder = table.folder
    assert folder == static_mod.static_dir(folder.parent, "all-MiniLM-L6-v2")
    assert (folder / "claude-context.json").is_file() and table.dim == static_mod.PCA_DIMS
    again = static_mod.static_table(folder.parent, "default")  # same model, another of its names
    assert again is table  # loaded once per process, no second build
    vecs = table.encode(["retry the upload with exponential backoff", "retry uploads, backing off"])
    assert vecs.shape == (2, table.dim) and float(vecs[0] @ vecs[1]) > 0.5


def test_the_table_is_read_without_model2vec_with_its_vectors(table, tmp_path) -> None:
    """``static_direct`` encodes exactly as model2vec's ``StaticModel.encode`` (empty, short,
    non-ASCII, control characters, texts cut by characters and by tokens, several batches); a new
    process that loads the table and encodes never imports model2vec; a folder of another shape
    is left to model2vec."""
    import json
    import shutil
    import subprocess
    import sys

    import numpy as np
    from model2vec import StaticModel

    from claude_context.embedding.static_direct import StaticEncoder

    texts = [
        "",
        "x",
        "héllo wörld ✓ 𝔘nicode ẞ 日本語のテキスト",
        "\x00\x01 \t\r binary-ish",
        "def parse(version: str) -> tuple[int, ...]:\n    return tuple(map(int, version.split('.')))\n" * 60,
        "token " * 3000,
        "how are routes grouped and registered",
    ]
    ref = StaticModel.from_pretrained(str(table.folder), force_download=False).encode(
        texts, max_length=static_mod.MAX_TOKENS, batch_size=3, use_multiprocessing=False
    )
    direct = StaticEncoder(table.folder).encode(texts, static_mod.MAX_TOKENS, batch_size=3)
    assert direct.dtype == ref.dtype and np.array_equal(direct, ref)
    mine = table.encode(texts)
    assert mine.dtype == np.float32 and np.abs(np.linalg.norm(mine[1:], axis=1) - 1).max() < 1e-5
    code = (
        "import sys; from pathlib import Path; from claude_context.embedding.static import StaticTable; "
        f"t = StaticTable(Path({str(table.folder)!r})); t.encode(['parse a version']); "
        "print('model2vec' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
    other = tmp_path / "table"
    shutil.copytree(table.folder, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps(config | {"model_type": "something-newer"}))
    with pytest.raises(ValueError, match="not a mean-pooled model2vec table"):
        StaticEncoder(other)
    assert np.array_equal(static_mod.StaticTable(other).encode(texts), mine)


def test_static_vectors_rank_the_chunks_allowed_and_are_encoded_once(table, tmp_path, monkeypatch) -> None:
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    vectors = static_mod.StaticVectors(table, cache)
    vectors.add([(1, "k1", "def parse_version(text): return text.split('.')"), (2, "k2", "CSS colours")])
    vectors.add([(1, "k1", "seen before: not encoded twice"), (3, "k3", "class LRUCache: evict the oldest")])
    assert len(vectors) == 3 and vectors.missing([1, 2, 3, 4]) == [4]
    ranked = vectors.rank("split a version number into its parts", {1, 2, 3}, 2)
    assert len(ranked) == 2 and ranked[0][0] == 1 and ranked[0][1] >= ranked[1][1]
    assert {cid for cid, _ in vectors.rank("version", {2, 3}, 5)} == {2, 3}
    assert vectors.rank("split a version number", None, 3)[0][0] == 1  # every chunk known
    encoded: list[int] = []
    real = table.encode
    monkeypatch.setattr(table, "encode", lambda texts: encoded.append(len(texts)) or real(texts))
    again = static_mod.StaticVectors(table, cache)  # another process: the cache has them
    again.add([(7, "k1", "def parse_version(text): return text.split('.')"), (8, "k3", "")])
    assert encoded == [] and len(again) == 2
    assert again.rank("split a version number", None, 1)[0][0] == 7 and encoded == [1]  # the query
    vectors.clear()
    assert len(vectors) == 0 and vectors.rank("version", {1}, 5) == []


# Paraphrases the keywords miss (no shared word, or a shared word in the wrong file) and the
# static table gets (the polyglot fixture).
PARAPHRASES = {
    "mist on glass when chilly and damp": "ios/Temperature.swift",
    "prize drop odds": "game/loot.lua",
    "geodesic gap between two spots on the globe": "android/src/com/parcelhub/Geo.kt",
}


def _firsts(engine, repo: Path, mode: str | None) -> int:
    found = 0
    for query, path in PARAPHRASES.items():
        results = engine.search(repo, query, limit=3, mode=mode).results
        found += bool(results) and results[0].path == path
    return found


def test_searches_during_a_cold_index_rank_pending_chunks_by_the_static_table(
    table, static_on, cold_engine, frozen_model, repo: Path, monkeypatch
) -> None:
    job, _ = cold_engine.start_index(repo)
    cb, _ = cold_engine.resolve(repo)
    wait_for(
        lambda: cb.status().chunks_pending > 0 and cb.status().chunks_pending == cb.status().chunks,
        what="every chunk staged, none embedded",
    )
    vectors = static_mod.vectors_for(cb.store, cb.config)
    assert vectors is not None
    wait_for(lambda: len(vectors) == cb.status().chunks, what="static vectors for the staged chunks")
    fused = []
    real_fuse = searching.fuse
    monkeypatch.setattr(
        searching, "fuse", lambda q, r, rows, s: fused.append(dict(r)) or real_fuse(q, r, rows, s)
    )
    with_static = _firsts(cold_engine, repo, None)
    keywords_only = _firsts(cold_engine, repo, "keyword")
    pending = cb.store.meta.pending_ids()
    n = len(PARAPHRASES)
    assert len(fused) == 2 * n and all("static" in f for f in fused[:n])  # keyword mode: none
    assert all({h.id for h in f["static"]} <= pending and f["static"] for f in fused[:n])
    # the whole table and each file's closeness too, as beside the complete index (topic phrases)
    assert all(f["static_all"] and "files" in f for f in fused[:n])
    assert not any("static_all" in f for f in fused[n:])
    assert with_static >= keywords_only + 2, (with_static, keywords_only)  # measured: 2 vs 0
    frozen_model.set()
    job.thread.join(120)
    assert job.error is None and cold_engine.status(repo).semantic_coverage == 1.0
    fused.clear()
    cold_engine.search(repo, "prize drop odds", limit=3)
    assert fused and "static" not in fused[0] and "static_all" in fused[0]  # beside the complete index
    assert len(vectors) == cb.status().chunks


def test_the_table_ranks_every_chunk_beside_the_complete_index_and_outlives_the_process(
    table, static_on, cold_engine, repo: Path, monkeypatch
) -> None:
    """Once every chunk has its transformer vector the whole table ranks beside the hybrid
    (measured: bench/README.md); its vectors are cached by text, so another process (a one-shot
    CLI search, a restarted server) loads them instead of encoding the tree again, and an edit
    re-encodes only the changed chunks."""
    cold_engine.index(repo)
    cb, _ = cold_engine.resolve(repo)
    meta = cb.store.meta
    vectors = static_mod.vectors_for(cb.store, cb.config)
    assert vectors is not None and vectors.complete_at == meta.chunks_generation()
    assert {cid for cid, _ in vectors.rank("anything", None, 10**6)} == meta.chunk_ids()
    fused = []
    real_fuse = searching.fuse
    monkeypatch.setattr(
        searching, "fuse", lambda q, r, rows, s: fused.append(dict(r)) or real_fuse(q, r, rows, s)
    )
    found = cold_engine.search(repo, "prize drop odds", limit=3).results
    assert found[0].path == "game/loot.lua" and fused[0]["static_all"] and "static" not in fused[0]
    fused.clear()
    cold_engine.search(repo, "prize drop odds", limit=3, mode="keyword")
    cold_engine.search(repo, "prize drop odds", limit=3, mode="semantic")
    cold_engine.search(repo, "Roll the loot table for a prize.", limit=3)  # a doc sentence
    cold_engine.search(repo, "LootTable", limit=3)  # an identifier
    assert len(fused) == 4 and not any("static_all" in f for f in fused)  # file-seeking hybrid only

    encoded: list[int] = []
    real = table.encode
    monkeypatch.setattr(table, "encode", lambda texts: encoded.append(len(texts)) or real(texts))
    other = Engine(load_config())  # a new process's engine on the same home
    try:
        assert other.search(repo, "prize drop odds", limit=3).results[0].path == "game/loot.lua"
        assert encoded == [1]  # the query only: every chunk's vector came from the cache
    finally:
        other.close()
    loot = repo / "game" / "loot.lua"
    loot.write_text(loot.read_text() + "\nlocal function jackpot_chance(n)\n  return 1 / n\nend\n")
    (repo / "ios" / "Temperature.swift").unlink()
    encoded.clear()
    cold_engine.index(repo)
    assert sum(encoded) <= 3  # the changed chunks only (a file's trailing chunk may shift)
    live = meta.chunk_ids()
    assert vectors.complete_at == meta.chunks_generation() and len(vectors) == len(live)
    assert {cid for cid, _ in vectors.rank("dew point", None, 10**6)} == live  # the deleted file's are gone

    monkeypatch.setenv("CLAUDE_CONTEXT_STATIC_COMPLETE_MAX_CHUNKS", str(len(live) - 1))
    big = Engine(load_config())  # a codebase past the size cap: no scan, no vectors held
    try:
        fused.clear()
        assert big.search(repo, "prize drop odds", limit=3).results
        cb_big, _ = big.resolve(repo)
        held = static_mod.vectors_for(cb_big.store, cb_big.config)
        assert fused and "static_all" not in fused[0] and (held is None or len(held) == 0)
    finally:
        big.close()


def test_a_large_codebase_is_ranked_by_a_graph_that_follows_its_edits(
    table, static_on, cold_engine, repo: Path, monkeypatch
) -> None:
    """Above ``EXACT_SCAN_MAX`` chunks the table's ranking of every chunk comes from an HNSW
    graph over the same vectors (built aside once they are all in, then kept in step with edits),
    not from a scan of each vector; it ranks what the scan ranks (recall on this tree: all)."""
    monkeypatch.setattr(static_mod, "EXACT_SCAN_MAX", 5)
    cold_engine.index(repo)
    cb, _ = cold_engine.resolve(repo)
    meta = cb.store.meta
    vectors = static_mod.vectors_for(cb.store, cb.config)
    assert vectors is not None and vectors.settle(60)
    live = meta.chunk_ids()
    assert len(live) > 5 and vectors.graph_size == len(live)
    q = vectors.query_vector("prize drop odds")
    by_graph = vectors.rank(q, None, 5)
    vectors.exact_max = 10**9
    by_scan = vectors.rank(q, None, 5)
    vectors.exact_max = 5
    assert [cid for cid, _ in by_graph] == [cid for cid, _ in by_scan]
    assert [round(s, 4) for _, s in by_graph] == [round(s, 4) for _, s in by_scan]
    found = cold_engine.search(repo, "prize drop odds", limit=3).results
    assert found[0].path == "game/loot.lua"

    (repo / "game" / "jackpot.lua").write_text("local function jackpot_odds(n)\n  return 1 / n\nend\n")
    (repo / "ios" / "Temperature.swift").unlink()
    cold_engine.index(repo)
    live = meta.chunk_ids()
    assert vectors.settle(60) and {cid for cid, _ in vectors.rank("dew point", None, 10**6)} == live
    assert vectors.graph_size == len(live)  # the new file's chunks in, the deleted file's out


def test_a_graph_being_built_leaves_searches_to_the_scan(table, monkeypatch) -> None:
    """While the graph is built (seconds, in the background) a search neither waits for it nor
    goes without the table: the exact scan answers, the graph takes over once it is there."""
    started, go = threading.Event(), threading.Event()
    vectors = static_mod.StaticVectors(table)
    vectors.exact_max = 2
    real = vectors._build_graph

    def slow_build(ids, vecs, epoch):
        started.set()
        go.wait(60)
        real(ids, vecs, epoch)

    monkeypatch.setattr(vectors, "_build_graph", slow_build)
    vectors.add([(1, "k1", "def parse_version(text): return text.split('.')"), (2, "k2", "CSS colours")])
    vectors.add([(3, "k3", "class LRUCache: evict the oldest entry")])
    assert vectors.rank("split a version number", None, 3)[0][0] == 1  # by the scan
    assert started.wait(10) and vectors.graph_size == 0
    go.set()
    assert vectors.settle(60) and vectors.graph_size == 3
    assert vectors.rank("split a version number", None, 3)[0][0] == 1  # by the graph


def test_a_server_s_first_search_does_not_wait_for_many_cached_vectors(
    table, static_on, cold_engine, repo: Path, monkeypatch
) -> None:
    """A new process on a large index (89k chunks: ~3 s of cache reads) answers its first
    search without the table's ranking and loads the vectors in the background."""
    cold_engine.index(repo)
    monkeypatch.setattr(static_mod, "CACHE_SYNC", 3)
    monkeypatch.setattr(searching, "STATIC_SYNC", 3)
    fused = []
    real_fuse = searching.fuse
    monkeypatch.setattr(
        searching, "fuse", lambda q, r, rows, s: fused.append(dict(r)) or real_fuse(q, r, rows, s)
    )
    other = Engine(load_config())
    try:
        assert other.search(repo, "prize drop odds", limit=3).results[0].path == "game/loot.lua"
        assert "static_all" not in fused[0]
        cb, _ = other.resolve(repo)
        vectors = static_mod.vectors_for(cb.store, cb.config)
        assert vectors is not None and vectors.settle(60) and len(vectors) == len(cb.store.meta.chunk_ids())
        other.search(repo, "prize drop odds", limit=3)
        assert fused[-1]["static_all"]
    finally:
        other.close()


def test_each_file_is_scored_as_a_whole_by_the_mean_of_its_chunks(
    table, static_on, cold_engine, repo: Path, monkeypatch
) -> None:
    """Beside the complete index, a file-seeking search also gets each candidate's file closeness
    to the query (the mean of the file's chunk vectors: what the file is about as a whole),
    scaled 0 (the median file) to 1 (the closest); recomputed when the index changes."""
    cold_engine.index(repo)
    cb, _ = cold_engine.resolve(repo)
    meta = cb.store.meta
    vectors = static_mod.vectors_for(cb.store, cb.config)
    assert vectors is not None and vectors.ensure_all(meta, 10**6)
    q = vectors.query_vector("prize drop odds")
    scores = vectors.file_scores(q, meta)
    assert max(scores, key=scores.get) == "game/loot.lua" and scores["game/loot.lua"] == 1.0
    assert 0 < len(scores) < len(meta.paths()) and all(0 < v <= 1 for v in scores.values())
    fused = []
    real_fuse = searching.fuse
    monkeypatch.setattr(
        searching, "fuse", lambda q, r, rows, s: fused.append((dict(r), rows)) or real_fuse(q, r, rows, s)
    )
    cold_engine.search(repo, "prize drop odds", limit=3)
    rankings, rows = fused[0]
    central = file_centrality(meta)  # plus how much of the rest uses the file (test below)
    assert central and rankings["files"]
    weight = cb.config.central_file_weight
    for h in rankings["files"]:
        path = rows[h.id].chunk.path
        assert h.score == pytest.approx(scores.get(path, 0.0) + weight * central.get(path, 0.0))
    fused.clear()
    cold_engine.search(repo, "Roll the loot table for a prize.", limit=3)  # a doc sentence
    assert "files" not in fused[0][0]

    (repo / "game" / "jackpot.lua").write_text(
        "-- the prize drop odds of the jackpot\nlocal function jackpot_odds(n)\n  return 1 / n\nend\n"
    )
    cold_engine.index(repo)
    assert vectors.ensure_all(meta, 10**6)
    assert "game/jackpot.lua" in vectors.file_scores(q, meta)


def test_a_file_the_rest_of_the_code_uses_is_the_likelier_answer(
    table, static_on, cold_engine, tmp_path: Path, monkeypatch
) -> None:
    """``search/centrality``: a file's centrality is how many other files use a name it defines
    (tests and names defined in more than three files left out), on a log scale to 1; it lifts
    a file-seeking question's candidates beside the file's closeness. After an edit the previous
    map answers until a thread has computed the new one."""
    import math

    from claude_context.search import centrality

    helper = (
        'def {0}(text):\n    """Tidy the whitespace of a text: {1}."""\n'
        '    return " ".join(text.split())\n\n\n'
    )
    files = {
        "pkg/strings.py": helper.format("squash_spaces", "collapse runs of blanks")
        + helper.format("strip_margins", "trim each line"),
        "pkg/texts.py": helper.format("collapse_blanks", "collapse runs of blanks")
        + helper.format("trim_lines", "trim each line"),
        "tests/test_texts.py": "from pkg.texts import trim_lines\n\n\ndef test_trim():\n"
        "    assert trim_lines(' a ') == 'a'\n",
        "pkg/e.py": "from pkg.texts import collapse_blanks\n\n\ndef clean(x):\n"
        "    return collapse_blanks(x)\n",
        "pkg/main.py": "from pkg import a\n\n\ndef main():\n    return a.run()\n",
    }
    use = "from pkg.{0} import {1}\n\n\ndef run():\n    return {1}('{2}')\n"
    for name in "abcd":
        files[f"pkg/{name}.py"] = use.format("strings", "squash_spaces", name)
    root = tmp_path / "repo"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    cold_engine.index(root)
    cb, _ = cold_engine.resolve(root)
    scores = centrality.compute(cb.store.meta)
    # strings.py: used by a-d; texts.py: by e.py (the test does not count); run (4 definers): none
    assert scores["pkg/strings.py"] == 1.0
    assert scores["pkg/texts.py"] == pytest.approx(math.log(2) / math.log(5))
    assert not {"pkg/a.py", "pkg/e.py", "tests/test_texts.py"} & set(scores)
    # a question both files answer alike: each file's best chunk is lifted by the file lift's
    # share of the top score x its centrality x the weight (here 1.0 and 0.43: what decides)
    question = "helpers that tidy whitespace"
    with_prior = {r.path: r.score for r in cold_engine.search(root, question, limit=4).results}
    monkeypatch.setenv("CLAUDE_CONTEXT_CENTRAL_FILE_WEIGHT", "0")
    plain = Engine(load_config())
    try:
        without = {r.path: r.score for r in plain.search(root, question, limit=4).results}
    finally:
        plain.close()
    gain = {p: with_prior[p] - without[p] for p in ("pkg/strings.py", "pkg/texts.py")}
    assert gain["pkg/texts.py"] > 0
    assert gain["pkg/strings.py"] / gain["pkg/texts.py"] == pytest.approx(math.log(5) / math.log(2), rel=1e-3)
    assert gain["pkg/strings.py"] > abs(without["pkg/strings.py"] - without["pkg/texts.py"])

    known = centrality.file_centrality(cb.store.meta)
    for name in "abcd":  # the four users move over to texts.py
        (root / f"pkg/{name}.py").write_text(use.format("texts", "collapse_blanks", name))
    cold_engine.index(root)
    assert centrality.file_centrality(cb.store.meta) is known  # the previous map, meanwhile
    wait_for(lambda: centrality.file_centrality(cb.store.meta) is not known, what="the new map")
    assert centrality.file_centrality(cb.store.meta)["pkg/texts.py"] == 1.0


def test_the_table_is_checked_again_only_when_the_chunks_change(
    table, static_on, cold_engine, repo: Path, monkeypatch
) -> None:
    """Searches while vectors arrive must not re-read every chunk's key and recompute the file
    centroids each time a batch of transformer vectors lands (each batch is a new generation):
    what the static table derives from depends on the chunks alone."""
    import numpy as np

    cold_engine.index(repo)
    cb, _ = cold_engine.resolve(repo)
    meta = cb.store.meta
    vectors = static_mod.vectors_for(cb.store, cb.config)
    assert vectors is not None and vectors.ensure_all(meta, 10**6)
    before, chunks_before = meta.generation(), meta.chunks_generation()
    assert chunks_before <= before
    cb.store.fill_vectors([], np.zeros((0, 384), dtype=np.float32))  # vectors only: a new generation
    assert meta.generation() > before and meta.chunks_generation() == chunks_before
    real = meta.embed_keys
    monkeypatch.setattr(meta, "embed_keys", lambda: pytest.fail("the chunks were read again"))
    assert vectors.ensure_all(meta, 10**6)
    monkeypatch.setattr(meta, "embed_keys", real)
    (repo / "game" / "jackpot.lua").write_text("local function jackpot_odds(n)\n  return 1 / n\nend\n")
    cold_engine.index(repo)
    assert meta.chunks_generation() > chunks_before
    assert vectors.ensure_all(meta, 10**6) and vectors.complete_at == meta.chunks_generation()


def test_a_build_already_under_way_elsewhere_is_said_as_such(monkeypatch, caplog, tmp_path) -> None:
    """A second process (a CLI search right after `index`) finds another's build under way: it
    says so instead of announcing a build of its own (its builder waits on the lock, then reuses
    the table)."""
    from filelock import FileLock

    folder = tmp_path / "models" / "static-table"
    folder.parent.mkdir(parents=True)
    started: list[list[str]] = []

    class Proc:
        def __init__(self, args, **kwargs) -> None:
            started.append(args)

    monkeypatch.setattr(static_mod.subprocess, "Popen", Proc)
    monkeypatch.setattr(static_mod, "_BUILDS", {})
    with caplog.at_level(logging.WARNING, logger="claude_context.embedding.static"):
        with FileLock(folder.parent / f".{folder.name}.lock"):  # "the other process"
            static_mod._start_build(folder, "src")
        said = caplog.records[-1].getMessage()
        assert "being built by another process" in said and "preparing" not in said
        static_mod._BUILDS.clear()
        static_mod._start_build(folder, "src")
        assert "preparing the static embedding table" in caplog.records[-1].getMessage()
    assert len(started) == 2  # a builder either way: the second one finds the table or builds it


def test_without_a_table_searches_answer_from_keywords_and_a_failed_build_is_said_once(
    static_on, cold_engine, frozen_model, repo: Path, expected: list[dict], monkeypatch, caplog, tmp_path
) -> None:
    """A table that cannot be built (here: the model's files are missing) leaves the answers of
    today: keywords while no vector exists. Nothing crashes, nothing is downloaded."""
    models = tmp_path / "models"
    monkeypatch.setattr(static_mod, "static_dir", lambda models_dir, name: models / "static-table")
    monkeypatch.setattr(static_mod, "resolve_model", lambda name: (str(tmp_path / "no-such-model"), True))
    monkeypatch.setattr(static_mod, "_BUILDS", {})
    with caplog.at_level(logging.WARNING, logger="claude_context.embedding.static"):
        job, _ = cold_engine.start_index(repo)
        cb, _ = cold_engine.resolve(repo)
        wait_for(lambda: cb.status().chunks_pending == cb.status().chunks > 0, what="chunks staged")
        assert static_mod.wait_for_build(models, "all-MiniLM-L6-v2", timeout=120) is None
        answers = [cold_engine.search(repo, e["query"], limit=3) for e in expected[:5]]
        keywords = [cold_engine.search(repo, e["query"], limit=3, mode="keyword") for e in expected[:5]]
    assert [[r.path for r in a.results] for a in answers] == [[r.path for r in k.results] for k in keywords]
    assert static_mod.vectors_for(cb.store, cb.config) is None
    said = [r for r in caplog.records if "preparing the static embedding table" in r.getMessage()]
    assert len(said) == 1  # the build was tried once in this process, not at every search
    frozen_model.set()
    job.thread.join(120)
    assert job.error is None
