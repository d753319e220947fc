"""End-to-end engine behaviour on real files with the real model, tantivy, hnswlib and SQLite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from claude_context.errors import NotIndexedError, UserError
from claude_context.records import SearchFilter


def _disk_files(repo: Path) -> set[str]:
    return {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()}


def test_index_then_search_each_language(engine, repo, expected):
    report = engine.index(repo)
    assert report.files_total == len(_disk_files(repo))
    assert report.chunks_total > len(expected)
    assert engine.status(repo).status == "indexed"
    first = 0
    for case in expected:
        resp = engine.search(repo, case["query"], limit=5)
        hits = [(r.path, r.symbol) for r in resp.results]
        found = [
            i for i, (path, symbol) in enumerate(hits) if path == case["path"] and case["symbol"] in symbol
        ]
        assert found, f"{case['language']}: {case['query']!r} did not find {case['symbol']} in {hits}"
        first += found[0] == 0
    # the right definition first for nearly every language
    assert first >= len(expected) - 2, first


def test_result_shape_and_line_numbers(engine, repo):
    engine.index(repo)
    resp = engine.search(repo, "parse a semantic version string", limit=3)
    assert resp.results and not resp.partial
    top = resp.results[0]
    lines = (repo / top.path).read_text().splitlines()
    assert top.content == "\n".join(lines[top.start_line - 1 : top.end_line])
    assert top.language and top.kind and top.score > 0


def test_modes_keyword_semantic(engine, repo):
    engine.index(repo)
    kw = engine.search(repo, "slugify", mode="keyword")
    assert kw.results and kw.mode == "keyword"
    assert any("slug" in r.path for r in kw.results[:3])
    sem = engine.search(repo, "turn a title into a url friendly string", mode="semantic")
    assert sem.results and sem.mode == "semantic"
    with pytest.raises(UserError):
        engine.search(repo, "x", mode="fuzzy")


def test_filters(engine, repo):
    engine.index(repo)
    q = "function"
    py = engine.search(repo, q, filters=SearchFilter(extensions=["py"]), limit=20)
    assert py.results and all(r.path.endswith(".py") for r in py.results)
    web = engine.search(repo, q, filters=SearchFilter(include_globs=["web/**"]), limit=20)
    assert web.results and all(r.path.startswith("web/") for r in web.results)
    nojs = engine.search(repo, q, filters=SearchFilter(exclude_globs=["*.js", "*.jsx"]), limit=20)
    assert nojs.results and not any(r.path.endswith((".js", ".jsx")) for r in nojs.results)
    go = engine.search(repo, q, filters=SearchFilter(languages=["go"]), limit=20)
    assert go.results and all(r.language == "go" for r in go.results)
    none = engine.search(repo, q, filters=SearchFilter(extensions=[".nothing"]))
    assert none.results == [] and none.note


def test_subfolder_search(engine, repo):
    engine.index(repo)
    resp = engine.search(repo / "web", "checksum of a shipping label", limit=20)
    assert resp.subfolder == "web"
    assert resp.results and all(r.path.startswith("web/") for r in resp.results)
    with pytest.raises(NotIndexedError):
        engine.search(repo.parent, "anything")


def test_incremental_modify_add_delete_rename(engine, repo):
    first = engine.index(repo)
    # no-op: nothing re-chunked, nothing embedded
    noop = engine.index(repo)
    assert noop.files_changed == 0 and noop.chunks_embedded == 0 and noop.chunks_total == first.chunks_total

    # touch without change: stat moves, content same -> recorded, not re-chunked or embedded
    target = repo / "app" / "slugs.py"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10_000_000))
    touched = engine.index(repo)
    assert touched.chunks_embedded == 0 and touched.chunks_written == 0

    # modify one file: only that file's new chunks are embedded
    target.write_text(
        target.read_text()
        + "\n\ndef zebra_stripe_rows(rows):\n    '''Alternate zebra colours.'''\n    return rows\n"
    )
    mod = engine.index(repo)
    assert mod.files_changed == 1
    assert 1 <= mod.chunks_embedded <= 2
    assert engine.search(repo, "zebra_stripe_rows", mode="keyword").results[0].path == "app/slugs.py"

    # add a file
    (repo / "app" / "newmod.py").write_text("def quokka_counter(n):\n    return n + 1\n")
    add = engine.index(repo)
    assert add.files_changed == 1 and add.chunks_embedded == 1
    assert engine.search(repo, "quokka_counter", mode="keyword").results[0].path == "app/newmod.py"

    # rename it: old path gone, new path found
    (repo / "app" / "newmod.py").rename(repo / "app" / "renamed.py")
    ren = engine.index(repo)
    assert ren.files_deleted == 1 and ren.files_changed == 1
    hits = engine.search(repo, "quokka_counter", mode="keyword").results
    assert hits[0].path == "app/renamed.py"
    assert all(r.path != "app/newmod.py" for r in hits)

    # delete: its chunks are gone from every index
    (repo / "app" / "renamed.py").unlink()
    dele = engine.index(repo)
    assert dele.files_deleted == 1
    for mode in ("keyword", "semantic", "hybrid"):
        assert all(
            r.path != "app/renamed.py" for r in engine.search(repo, "quokka_counter", mode=mode).results
        )
    store = engine.resolve(repo)[0].store
    assert set(store.meta.file_states()) == _disk_files(repo)


def test_cache_never_embeds_twice(cold_engine, repo, tmp_path):
    first = cold_engine.index(repo)
    assert first.chunks_embedded > 0
    assert cold_engine.index(repo, force=True).chunks_embedded == 0
    cold_engine.clear(repo)
    again = cold_engine.index(repo)
    assert again.chunks_embedded == 0 and again.chunks_total == first.chunks_total
    other = tmp_path / "other-checkout"
    shutil.copytree(repo, other)
    assert cold_engine.index(other).chunks_embedded == 0


def test_branch_switch_back_embeds_nothing(cold_engine, repo):
    cold_engine.index(repo)
    f = repo / "app" / "ledger.py"
    original = f.read_text()
    f.write_text(original + "\n\ndef branch_only_helper():\n    return 'feature'\n")
    assert cold_engine.index(repo).chunks_embedded >= 1
    f.write_text(original)
    assert cold_engine.index(repo).chunks_embedded == 0


def test_find_symbol(engine, repo, expected):
    engine.index(repo)
    case = expected[0]
    name = case["symbol"].rsplit(".", 1)[-1]
    hits = engine.find_symbol(repo, name)
    assert hits and hits[0]["path"] == case["path"] and hits[0]["symbol"].endswith(name)
    assert hits[0]["signature"]
    prefix = engine.find_symbol(repo, name[:3])
    assert any(h["symbol"].endswith(name) for h in prefix)


def test_derived_index_rebuilt_without_reembedding(cold_engine, repo, config):
    from claude_context.config import load_config
    from claude_context.engine import Engine

    cold_engine.index(repo)
    store = cold_engine.resolve(repo)[0].store
    folder = store.folder
    cold_engine.close()
    for p in folder.iterdir():  # lose every derived file: vectors and BM25
        if p.name.startswith(("vectors", "bm25")):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    fresh = Engine(load_config())
    try:
        report = fresh.index(repo)
        assert report.chunks_embedded == 0
        for mode in ("keyword", "semantic"):
            assert fresh.search(repo, "semantic version string", mode=mode).results
    finally:
        fresh.close()


def test_search_repairs_lagging_vectors_in_reader(engine, repo):
    """A reader whose on-disk vector file lags SQLite patches itself in memory from the cache."""
    engine.index(repo)
    store = engine.resolve(repo)[0].store
    idx = store.chunk_index()
    some = sorted(idx.vectors.ids())[:5]
    idx.vectors.delete(some)
    store._synced_generation = None
    engine.search(repo, "anything at all", mode="semantic")
    assert set(some) <= idx.vectors.ids()


def test_bad_inputs(engine, repo):
    (repo / "blob.dat").write_bytes(b"\x00\x01\x02binary" * 100)
    (repo / "huge.txt").write_text("x = 1\n" * 300_000)  # ~1.8 MB > 1 MiB
    (repo / "latin1.py").write_bytes(b"def caf\xe9_menu():\n    return 'caf\xe9'\n")
    (repo / "loop").symlink_to(repo, target_is_directory=True)
    (repo / "outside").symlink_to("/etc", target_is_directory=True)
    (repo / ".env").write_text("SECRET_TOKEN=hunter2\n")
    report = engine.index(repo)
    reasons = {s["reason"] for s in report.skipped}
    assert {"too_large", "symlink_outside_root", "symlink_loop"} <= reasons
    store = engine.resolve(repo)[0].store
    states = store.meta.file_states()
    assert states["blob.dat"].status == "skipped" and states["blob.dat"].reason == "binary"
    assert "huge.txt" not in states and ".env" not in states
    assert not any(p.startswith(("loop/", "outside/")) for p in states)
    hit = engine.search(repo, "caf_menu", mode="keyword").results
    assert hit and hit[0].path == "latin1.py" and "\ufffd" in hit[0].content
    assert not engine.search(repo, "hunter2", mode="keyword").results
    for q in ['"', "(", "a AND OR NOT", "*:*", "🙂", "x" * 5000]:
        engine.search(repo, q)  # never raises
    with pytest.raises(UserError):
        engine.search(repo, "   ")
    with pytest.raises(UserError):
        engine.index(repo / "does-not-exist")
    with pytest.raises(UserError):
        engine.index(repo / "app" / "slugs.py")
    # a search names the mistake: a file is not a folder to search in, a typo is not "not indexed"
    with pytest.raises(UserError, match=r"slugs\.py is a file, not a folder.*--path 'app/slugs\.py'"):
        engine.search(repo / "app" / "slugs.py", "slug")
    with pytest.raises(UserError, match="path does not exist"):
        engine.search(repo / "does-not-exist", "slug")
    assert engine.search(repo / "app", "slug").results  # a folder inside the codebase: searched


def test_file_deleted_mid_index(engine, repo):
    victim = repo / "app" / "ledger.py"
    calls = []

    def progress(p):
        if p.phase == "indexing" and not calls:
            calls.append(1)
            victim.unlink()

    report = engine.index(repo, progress=progress)
    store = engine.resolve(repo)[0].store
    assert "app/ledger.py" not in store.meta.file_states()
    assert report.files_total == len(_disk_files(repo))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_file(engine, repo):
    f = repo / "app" / "slugs.py"
    f.chmod(0)
    try:
        engine.index(repo)
        store = engine.resolve(repo)[0].store
        st = store.meta.file_states().get("app/slugs.py")
        assert st is None or st.status == "skipped"
    finally:
        f.chmod(0o644)


def test_status_list_clear(engine, repo):
    assert engine.status(repo).status == "not_indexed"
    engine.index(repo)
    st = engine.status(repo)
    assert st.status == "indexed" and st.files > 0 and st.chunks > 0 and st.last_indexed_at
    assert st.index["vectors"] == st.chunks
    assert [s.root for s in engine.list_codebases()] == [str(repo.resolve())]
    engine.clear(repo)
    assert engine.status(repo).status == "not_indexed"
    assert engine.list_codebases() == []
    with pytest.raises(NotIndexedError):
        engine.search(repo, "x")


def test_ignore_patterns_and_splitter_setting(engine, repo):
    report = engine.index(repo, ignore_patterns=["web/"], splitter="text")
    store = engine.resolve(repo)[0].store
    paths = store.meta.file_states()
    assert report.files_total and not any(p.startswith("web/") for p in paths)
    kinds = {sc.chunk.kind for sc in store.meta.chunks_for_path("app/slugs.py")}
    assert kinds == {"text"}
    # settings are remembered by the next run, which changes nothing
    assert engine.index(repo).files_changed == 0
