"""The pipelined indexer: same chunks and results as a serial run, keywords before vectors,
resumption after a crash mid-embedding, and clean re-embeds when the backend changes."""

from __future__ import annotations

import functools
import shutil
import threading
import time
from pathlib import Path

import pytest

from claude_context import pipeline
from claude_context.engine import Engine

QUERIES = [
    ("parse a semantic version string", "hybrid"),
    ("turn a title into a url friendly string", "semantic"),
    ("slugify", "keyword"),
    ("checksum of a shipping label", "hybrid"),
]


def _rows(engine: Engine, repo: Path) -> list[tuple]:
    store = engine.resolve(repo)[0].store
    out = []
    for batch in store.meta.iter_chunks():
        for sc in batch:
            c = sc.chunk
            out.append((c.path, c.start_line, c.end_line, c.symbol, c.kind, sc.embed_key))
    return sorted(out)


def _consistent(engine: Engine, repo: Path) -> None:
    store = engine.resolve(repo)[0].store
    vec_ids, kw_ids = store.chunk_index().ids()
    assert vec_ids == kw_ids == store.meta.chunk_ids()
    assert store.meta.pending_count() == 0
    assert set(store.meta.file_states()) == {
        p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()
    }


def test_pipelined_equals_serial(config, model, repo, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "PROCESS_MIN_FILES", 1)  # chunk in a worker process, as for big trees
    monkeypatch.setattr(pipeline, "EMBED_WINDOW", 24)  # several embed/fill rounds on a small repo
    for extra in ("analytics", "android", "desktop", "game", "ios", "native", "scripts"):
        shutil.rmtree(repo / extra)  # half the fixture is enough here, and the model is torch
    serial_repo = tmp_path / "serial" / "repo"
    shutil.copytree(repo, serial_repo)
    # torch: its vectors do not depend on which texts share a batch (int8 activations are quantized
    # per batch), so the two runs must agree exactly, whatever windows the pipeline formed
    config = config.replace(backend="torch", device="cpu")
    fast = Engine(config)
    slow = Engine(config.replace(home=tmp_path / "serial-home"))
    try:
        seen = []
        a = fast.index(repo, progress=lambda p: seen.append((p.phase, p.chunks_staged, p.chunks_done)))
        serial = functools.partialmethod(pipeline.IndexPipeline.__init__, concurrent=False)
        monkeypatch.setattr(pipeline.IndexPipeline, "__init__", serial)  # same stages, one batch at once
        b = slow.index(serial_repo)
        assert a.chunks_embedded == b.chunks_embedded > 0  # both cold: the model ran in both
        counts = ("files_total", "chunks_total", "files_changed", "files_skipped")
        assert [getattr(a, n) for n in counts] == [getattr(b, n) for n in counts]
        assert _rows(fast, repo) == _rows(slow, serial_repo)
        for q, mode in QUERIES:
            ra, rb = fast.search(repo, q, mode=mode), slow.search(serial_repo, q, mode=mode)
            assert [(r.path, r.start_line, r.end_line) for r in ra.results] == [
                (r.path, r.start_line, r.end_line) for r in rb.results
            ], q
            assert [r.score for r in ra.results] == pytest.approx([r.score for r in rb.results], abs=1e-4)
        _consistent(fast, repo)
        assert seen and seen[-1][2] == a.chunks_total
        st = fast.status(repo)
        assert st.semantic_coverage == 1.0 and st.backend == "torch" and st.chunks_pending == 0
    finally:
        fast.close()
        slow.close()


def test_keyword_search_before_vectors(cold_engine, repo, monkeypatch):
    """Rows and keywords land first; the semantic part fills in while searches already work."""
    release = threading.Event()
    real = pipeline.IndexPipeline._embed

    def held(self, window):
        release.wait(60)
        return real(self, window)

    monkeypatch.setattr(pipeline.IndexPipeline, "_embed", held)  # a "slow" model: no vector until released
    try:
        job, started = cold_engine.start_index(repo)
        assert started
        deadline = time.time() + 60
        resp = None
        while time.time() < deadline:
            st = cold_engine.status(repo)
            if st.chunks and st.files_done == 0 and st.chunks_pending == st.chunks:
                resp = cold_engine.search(repo, "slugify", mode="keyword")
                if resp.results:
                    break
            time.sleep(0.05)
        assert resp is not None and resp.results, "keyword search did not work before the vectors"
        assert any("slug" in r.path for r in resp.results)
        st = cold_engine.status(repo)
        assert st.status == "indexing" and st.semantic_coverage == 0.0 and st.files == 0
        hybrid = cold_engine.search(repo, "slugify")
        assert hybrid.partial and hybrid.semantic_coverage == 0.0 and "semantic" in hybrid.note
        assert hybrid.results  # keyword side answers, the dense side has nothing yet
    finally:
        release.set()
    job.thread.join(120)
    assert job.error is None and job.report is not None
    st = cold_engine.status(repo)
    assert st.status == "indexed" and st.semantic_coverage == 1.0 and st.eta_s is None
    assert not cold_engine.search(repo, "slugify").note
    _consistent(cold_engine, repo)


def test_crash_mid_embedding_resumes_without_redoing_work(cold_engine, repo, monkeypatch):
    monkeypatch.setattr(pipeline, "EMBED_WINDOW", 16)
    emb = cold_engine.embedder()
    real = emb.embed
    calls = {"n": 0}

    def dies(texts):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("power cut")
        return real(texts)

    emb.embed = dies
    with pytest.raises(RuntimeError, match="power cut"):
        cold_engine.index(repo)
    emb.embed = real
    store = cold_engine.resolve(repo)[0].store
    total = store.meta.chunk_count()
    pending = store.meta.pending_count()
    assert 0 < pending < total  # every chunk stored, some with vectors
    embedded_before = cold_engine.cache.count(emb.model_id)
    assert embedded_before > 0
    assert cold_engine.search(repo, "slugify", mode="keyword").results  # searchable meanwhile
    done_files = set(store.meta.file_states())
    all_files = {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()}
    assert done_files < all_files  # only files with all their vectors count as indexed

    report = cold_engine.index(repo)
    assert report.files_changed == len(all_files - done_files)  # resumed, not restarted
    assert report.chunks_embedded == len({k for *_, k in _rows(cold_engine, repo)}) - embedded_before
    _consistent(cold_engine, repo)


def test_lost_vectors_are_re_embedded(engine, repo):
    """A chunk whose vector is in neither the index nor the cache becomes pending, not invisible."""
    engine.index(repo)
    store = engine.resolve(repo)[0].store
    victim = min(store.meta.chunk_ids())
    gone = store.meta.get_chunks([victim])[victim]
    engine.cache._con().execute(
        "DELETE FROM embeddings WHERE model = ? AND key = ?", (store.model_id, gone.embed_key)
    )
    index = store.chunk_index()
    index.delete_vectors([victim])
    index.commit(store.meta.generation() - 1, durable=True)  # on disk: behind SQLite, as after a crash
    report = engine.index(repo)
    assert report.files_changed == 1 and report.chunks_embedded == 1
    _consistent(engine, repo)


def test_backend_switch_re_embeds_cleanly(config, model, repo):
    torch_engine = Engine(config.replace(backend="torch", device="cpu"))
    try:
        first = torch_engine.index(repo)
        assert first.model_id.endswith("|st") and first.chunks_embedded > 0 and not first.note
        torch_ids = _rows(torch_engine, repo)
    finally:
        torch_engine.close()
    int8 = Engine(config.replace(backend="onnx-int8"))
    try:
        second = int8.index(repo)
        assert "re-embedding" in second.note and first.model_id in second.note
        assert second.model_id.startswith("all-MiniLM-L6-v2|onnx-int8|")
        assert second.chunks_total == first.chunks_total
        assert second.files_changed == second.files_total  # everything re-chunked and re-embedded
        assert second.chunks_embedded == len({k for *_, k in torch_ids})
        store = int8.resolve(repo)[0].store
        assert store.model_id == second.model_id
        assert int8.resolve(repo)[0].query_embedder().model_id == second.model_id  # queries: same backend
        assert int8.status(repo).backend == "onnx-int8"
        _consistent(int8, repo)
        assert int8.search(repo, "parse a semantic version string", mode="semantic").results
    finally:
        int8.close()
    back = Engine(config.replace(backend="torch", device="cpu"))
    try:
        third = back.index(repo)  # switching back: re-chunked, but every vector is cached
        assert "re-embedding" in third.note and third.chunks_embedded == 0
        _consistent(back, repo)
    finally:
        back.close()


def test_stages_finishing_during_a_progress_report(config, repo):
    """A slow progress callback can outlast every stage: the run still ends normally (it once
    raised StopIteration, reported as "indexing failed: StopIteration")."""
    engine = Engine(config)
    calls = []

    def slow_progress(p) -> None:
        calls.append(p.phase)
        if len(calls) == 2:  # the first report from inside the run loop: let every stage finish
            stages = {"cc-stage", "cc-embed", "cc-fill"}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and stages & {t.name for t in threading.enumerate()}:
                time.sleep(0.05)

    try:
        report = engine.index(repo, progress=slow_progress)
        assert report.chunks_total > 0 and report.files_changed > 0
        _consistent(engine, repo)
    finally:
        engine.close()


def _refs(engine: Engine, repo: Path) -> list[tuple]:
    con = engine.resolve(repo)[0].store.meta._con()
    return sorted(con.execute("SELECT path, line, name, kind FROM refs").fetchall())


def test_references_after_staging_equal_inline_ones(config, engine, repo, tmp_path, monkeypatch):
    """A bulk run leaves references to a pass after the keyword commit: same rows as extracting
    them while chunking, and each file's state row only once its references are in."""
    inline_repo = tmp_path / "inline" / "repo"
    shutil.copytree(repo, inline_repo)
    inline = Engine(config.replace(home=tmp_path / "inline-home"))
    shutil.copy(config.cache_path, inline.config.cache_path)
    try:
        inline.index(inline_repo)  # 21 files: chunked in this process, references inline
        monkeypatch.setattr(pipeline, "PROCESS_MIN_FILES", 1)  # worker processes: references later
        states: list[set[str]] = []
        real = pipeline.IndexPipeline._refs_pass

        def refs_pass(self, pool, deferred):
            states.append(set(self.store.meta.file_states()))
            return real(self, pool, deferred)

        monkeypatch.setattr(pipeline.IndexPipeline, "_refs_pass", refs_pass)
        report = engine.index(repo)
        assert report.chunks_embedded == 0  # every vector came from the cache at staging time
        with_refs = {path for path, *_ in _refs(engine, repo)}
        assert len(states) == 1 and "README.md" in states[0] and "app/slugs.py" in with_refs
        assert states[0].isdisjoint(with_refs)  # those waited for their references
        assert _refs(engine, repo) == _refs(inline, inline_repo)
        assert {r.path for r in engine.references(repo, "slugify").results} == {
            r.path for r in inline.references(inline_repo, "slugify").results
        }
        _consistent(engine, repo)
    finally:
        inline.close()


def test_a_broken_worker_pool_is_finished_in_process(config, engine, repo, tmp_path, monkeypatch, caplog):
    """The chunk pool breaks after its first task and the references pool at once: both passes
    finish in this thread, with the rows and references of a run that never used workers."""
    from claude_context import prepare

    inline_repo = tmp_path / "inline" / "repo"
    shutil.copytree(repo, inline_repo)
    inline = Engine(config.replace(home=tmp_path / "inline-home"))
    shutil.copy(config.cache_path, inline.config.cache_path)
    real = prepare.in_workers

    def breaking(pool, fn, work, *args):
        if fn is prepare.prepare_task:
            yield next(real(pool, fn, work, *args))  # one task of 16 files, references left for later
        raise RuntimeError("a worker died")

    try:
        inline.index(inline_repo)  # 21 files: chunked in this process, references inline
        monkeypatch.setattr(pipeline, "PROCESS_MIN_FILES", 1)
        monkeypatch.setattr(prepare, "in_workers", breaking)
        with caplog.at_level("WARNING", logger="claude_context.prepare"):
            report = engine.index(repo)
        said = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("chunk worker failed") for m in said)
        assert any(m.startswith("reference worker failed") for m in said)
        assert report.files_total == 21 and report.chunks_embedded == 0
        assert _rows(engine, repo) == _rows(inline, inline_repo)
        assert _refs(engine, repo) == _refs(inline, inline_repo)
        _consistent(engine, repo)
    finally:
        inline.close()


def test_file_changed_before_its_references_is_redone(engine, repo, monkeypatch):
    """A file edited between chunking and the references pass gets no state row (its refs would
    not match its chunks), so the next run re-chunks it."""
    monkeypatch.setattr(pipeline, "PROCESS_MIN_FILES", 1)
    real = pipeline.IndexPipeline._refs_pass
    slugs = repo / "app" / "slugs.py"

    def edit_first(self, pool, deferred):
        with slugs.open("a", encoding="utf-8") as fh:
            fh.write("\n\ndef late_addition(title):\n    return slugify(title)\n")
        return real(self, pool, deferred)

    monkeypatch.setattr(pipeline.IndexPipeline, "_refs_pass", edit_first)
    engine.index(repo)
    store = engine.resolve(repo)[0].store
    assert "app/slugs.py" not in store.meta.file_states()
    assert "app/ledger.py" in store.meta.file_states()
    monkeypatch.setattr(pipeline.IndexPipeline, "_refs_pass", real)
    again = engine.index(repo)
    assert again.files_changed == 1
    late = slugs.read_text().splitlines().index("    return slugify(title)") + 1
    assert ("app/slugs.py", late) in {(r.path, r.line) for r in engine.references(repo, "slugify").results}
    _consistent(engine, repo)


def test_failure_while_storing_references_is_repaired(engine, repo, monkeypatch):
    """A run that dies while storing deferred references leaves no file with a state row but
    without its references (so nothing is trusted that lacks them); the next run completes them."""
    from claude_context.index.truth.store import CodebaseStore

    monkeypatch.setattr(pipeline, "PROCESS_MIN_FILES", 1)
    real = CodebaseStore.add_refs

    def dies(self, refs, files=()):
        raise OSError("disk went away")

    monkeypatch.setattr(CodebaseStore, "add_refs", dies)
    with pytest.raises(Exception, match="disk went away"):
        engine.index(repo)
    states = set(engine.resolve(repo)[0].store.meta.file_states())
    assert "README.md" in states and not _refs(engine, repo)
    assert not any(p.endswith((".py", ".go", ".ts", ".tsx", ".js", ".java", ".rs")) for p in states)
    assert engine.search(repo, "slugify", mode="keyword").results  # keyword-searchable meanwhile
    monkeypatch.setattr(CodebaseStore, "add_refs", real)
    again = engine.index(repo)
    assert again.files_changed == len({p.relative_to(repo).as_posix() for p in repo.rglob("*.*")} - states)
    assert any(r.path == "app/slugs.py" for r in engine.references(repo, "slugify").results)
    _consistent(engine, repo)


def test_chunk_workers_leave_with_a_killed_indexer(tmp_path):
    """kill -9 of the indexer must not leave its worker processes behind (the references pass
    keeps them alive after the keyword commit, when a user may well stop the run)."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import wait_for

    script = (
        "import os, time\n"
        "from claude_context.prepare import worker_pool\n"
        "pool = worker_pool(1)\n"
        "print(pool.submit(os.getpid).result(), flush=True)\n"
        "time.sleep(120)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(owner.stdout.readline())

    def gone() -> bool:
        try:
            state = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        return state in ("Z", "X")  # a zombie has exited; the new parent reaps it

    assert not gone()
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    try:
        wait_for(gone, timeout=20, what="the orphaned worker to exit")
    finally:
        if not gone():
            os.kill(worker, signal.SIGKILL)
