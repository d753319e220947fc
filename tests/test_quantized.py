"""Quantized vector indexes (int8, RaBitQ): recall against exact inner products, persistence,
deletes, filters, re-clustering, memory, and the engine end to end under each type."""

from __future__ import annotations

import itertools
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from claude_context.index.registry import AUTO_QUANTIZE_ABOVE, resolve_quantization
from claude_context.index.vectors.int8 import Int8VectorIndex
from claude_context.index.vectors.rabitq import RabitqVectorIndex
from claude_context.index.vectors.slots import SlotMap

DIM = 384
KINDS = ["int8", "rabitq"]


def clustered(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """Unit vectors in clusters of sub-clusters, with per-dimension scales. Calibrated on MiniLM
    code embeddings: the gap between the 10th and 11th neighbour (~0.003) is as small as in the
    real vectors (~0.005), so recall floors here mean something for real data."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((50, dim)).astype(np.float32)
    sub = centers[rng.integers(0, 50, 2000)] + 0.8 * rng.standard_normal((2000, dim)).astype(np.float32)
    x = sub[rng.integers(0, 2000, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    x *= np.exp(rng.uniform(-1.5, 0.5, dim)).astype(np.float32)  # real embeddings are not isotropic
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    return ids[np.argsort(-(x @ q), kind="stable")[:k]].tolist()


def make(kind: str, folder: Path, dim: int = DIM, **kw):
    """Small thresholds so the quantized paths (not the small-collection fallbacks) are tested."""
    if kind == "int8":
        return Int8VectorIndex(folder, dim, train_size=kw.pop("train_size", 500))
    return RabitqVectorIndex(folder, dim, min_train=kw.pop("min_train", 500), background=kw.pop("bg", False))


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, np.ndarray]:
    x = clustered(5100)
    return x[:5000], x[5000:]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, corpus) -> dict[str, object]:
    x, _ = corpus
    out = {}
    for kind in KINDS:
        ix = make(kind, tmp_path_factory.mktemp(kind))
        for s in range(0, 5000, 500):  # in batches, as the engine adds
            ix.add(list(range(s + 1, s + 501)), x[s : s + 500])
        out[kind] = ix
    return out


# ------------------------------------------------------------------------------------- recall


@pytest.mark.parametrize("kind", KINDS)
def test_recall_against_exact_inner_product(kind, built, corpus) -> None:
    x, queries = corpus
    ix = built[kind]
    ids = np.arange(1, 5001)
    recalls, errors = [], []
    for q in queries:
        hits = ix.search(q, 10)
        assert len(hits) == 10 and len({h.id for h in hits}) == 10
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))  # best first
        recalls.append(len({h.id for h in hits} & set(brute(x, ids, q, 10))) / 10)
        errors += [abs(h.score - float(x[h.id - 1] @ q)) for h in hits]  # scores are cosines
    # 1-bit codes alone reach ~0.5 here and a wrong metric/sign ~0: a broken re-rank fails this.
    assert np.mean(recalls) >= (0.99 if kind == "int8" else 0.95), np.mean(recalls)
    assert max(errors) < 0.002  # both re-rank on fp16 rows: scores are (fp16-exact) cosines
    if kind == "rabitq":
        assert ix.details()["mode"].startswith("IVF")  # not the small-collection exact scan


def test_rabitq_rerank_is_what_recovers_recall(built, corpus) -> None:
    """Guards the test above: the 1-bit estimates on their own are far below its floor."""
    x, queries = corpus
    ix = built["rabitq"]
    ids = np.arange(1, 5001)
    raw = []
    for q in queries[:50]:
        got, _ = ix._ivf.search(q.reshape(1, -1), 10, ix.nprobe())
        found = set(ix._slots.ids_of(got[0].astype(np.int64)).tolist())
        raw.append(len(found & set(brute(x, ids, q, 10))) / 10)
    assert np.mean(raw) < 0.85


def test_int8_rerank_is_what_recovers_recall(built, corpus) -> None:
    """Guards the int8 floor above: ranking by the codes alone falls below it."""
    x, queries = corpus
    ix = built["int8"]
    ids = np.arange(1, 5001)
    raw = []
    for q in queries:
        scores = ix._scan(q * ix._step)  # the offset q @ mid is the same for every row
        top = ix._slots.ids_of(np.argsort(-scores, kind="stable")[:10])
        raw.append(len(set(top.tolist()) & set(brute(x, ids, q, 10))) / 10)
    assert np.mean(raw) < 0.99, np.mean(raw)


def test_int8_learns_per_dimension_ranges(built, corpus) -> None:
    x, _ = corpus
    ix = built["int8"]
    assert ix.trained and ix.details()["mode"].startswith("int8")
    first = x[:500]  # learned from the first train_size vectors
    span = first.max(axis=0) - first.min(axis=0)
    ratio = ix._step * 255 / span
    assert np.allclose(ratio, 1 + 2 * Int8VectorIndex.margin, rtol=1e-3)  # each dimension's own range
    assert span.max() / span.min() > 3  # ... and they really differ
    assert 0 < ix.details()["clipped_fraction"] < 0.005  # later vectors rarely fall outside


def test_small_collections_are_exact(tmp_path: Path) -> None:
    x = clustered(300, seed=3)
    ids = np.arange(1, 301)
    for kind in KINDS:
        ix = make(kind, tmp_path / kind, train_size=1000, min_train=1000)
        ix.add(ids.tolist(), x)
        assert "float32" in ix.details()["mode"] or "exact" in ix.details()["mode"]
        for q in x[:10]:
            assert [h.id for h in ix.search(q, 10)] == brute(x, ids, q, 10)


# ------------------------------------------------------------------------------------- memory


def test_memory_is_a_fraction_of_fp32(tmp_path: Path) -> None:
    n = 20_000
    x = clustered(n, seed=4)
    fp32 = n * DIM * 4
    i8 = make("int8", tmp_path / "i8")
    i8.add(list(range(1, n + 1)), x)
    assert i8.resident_bytes() <= 0.27 * fp32  # codes + 13 B/vector of ids + block slack
    rq = make("rabitq", tmp_path / "rq")
    rq.add(list(range(1, n // 2 + 1)), x[: n // 2])
    half = rq.resident_bytes()
    rq.add(list(range(n // 2 + 1, n + 1)), x[n // 2 :])
    assert rq.wait_rebuild(60) and rq.details()["mode"].startswith("IVF")
    # Per vector (the per-cluster part is ~4 KB x sqrt(n): 1/14 of fp32 here, 1/19 at 1M).
    assert (rq.resident_bytes() - half) / (n // 2) <= DIM * 4 / 16
    assert rq.resident_bytes() <= fp32 / 12
    rq.save(1)
    size = (tmp_path / "rq" / "vectors.rabitq").stat().st_size
    assert abs(rq.ivf_bytes() - size) / size < 0.15  # the estimate follows rabitqlib's real layout


# ------------------------------------------------------------------------------ persistence


@pytest.mark.parametrize("kind", KINDS)
def test_persistence_round_trip(kind, tmp_path: Path) -> None:
    x = clustered(2000, seed=5)
    ix = make(kind, tmp_path)
    assert ix.saved_generation() is None
    ix.add(list(range(1, 1801)), x[:1800])
    ix.delete(range(1, 101))
    ix.add([5000], x[1800:1801])
    ix.save(42)
    before = [ix.search(q, 10) for q in x[1900:1910]]
    ix.close()
    assert all(p.name.startswith("vectors") for p in tmp_path.iterdir())  # store drops them on a switch

    again = make(kind, tmp_path)
    assert again.saved_generation() == 42
    assert again.count() == 1701 and again.ids() == set(range(101, 1801)) | {5000}
    assert [again.search(q, 10) for q in x[1900:1910]] == before
    again.add(list(range(1801, 2001)), x[1800:2000])  # keeps working after a reload
    again.delete([150])
    again.save(43)
    again.close()
    third = make(kind, tmp_path)
    assert third.saved_generation() == 43 and third.count() == 1900 and 150 not in third.ids()
    assert third.search(x[1999], 1)[0].id == 2000


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("damage", ["truncate", "flip", "sidecar"])
def test_corrupt_files_start_empty(kind, damage, tmp_path: Path) -> None:
    x = clustered(1000, seed=6)
    ix = make(kind, tmp_path)
    ix.add(list(range(1, 1001)), x)
    ix.save(3)
    ix.close()
    data = {"int8": "vectors.int8", "rabitq": "vectors.rabitq"}[kind]
    path = tmp_path / data
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "flip":
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    else:
        (tmp_path / "vectors.json").write_text("{not json")
    again = make(kind, tmp_path)
    assert again.count() == 0 and again.saved_generation() is None
    again.add([1], x[:1])  # and it is usable
    assert again.search(x[0], 1)[0].id == 1


@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_rerank_rows_start_empty(kind, tmp_path: Path) -> None:
    x = clustered(1000, seed=7)
    ix = make(kind, tmp_path)
    ix.add(list(range(1, 1001)), x)
    ix.save(3)
    ix.close()
    (rows,) = tmp_path.glob("vectors.*.f16")
    raw = bytearray(rows.read_bytes())
    raw[1000] ^= 0x01
    rows.write_bytes(bytes(raw))
    assert make(kind, tmp_path).saved_generation() is None


def test_int8_save_compacts_tombstones(tmp_path: Path) -> None:
    """Past ``compact_fraction`` dead slots, save writes live rows only (codes and fp16 file)."""
    x = clustered(2400, seed=9)
    ix = make("int8", tmp_path)
    ix.add(list(range(1, 2001)), x[:2000])
    ix.save(1)
    (first,) = tmp_path.glob("vectors.*.f16")
    ix.delete(range(1, 100))  # below the threshold: tombstones stay
    ix.save(2)
    assert ix.details()["tombstones"] == 99 and first.exists()
    ix.compact_fraction, ix.compact_min = 0.05, 0
    ix.delete(range(100, 400))
    ix.add(list(range(3001, 3401)), x[2000:2400])  # new rows still in the private tail
    before = [ix.search(q, 10) for q in x[1500:1510]]
    ix.save(3)
    assert ix.details()["tombstones"] == 0 and ix.count() == 2001
    (second,) = tmp_path.glob("vectors.*.f16")
    assert second != first and second.stat().st_size == 2001 * DIM * 2
    assert [ix.search(q, 10) for q in x[1500:1510]] == before
    assert ix.search(x[2399], 1)[0].id == 3400
    ix.close()
    again = make("int8", tmp_path)
    assert again.saved_generation() == 3 and again.ids() == set(range(400, 2001)) | set(range(3001, 3401))
    assert [again.search(q, 10) for q in x[1500:1510]] == before


# ----------------------------------------------------------------------- deletes and replace


@pytest.mark.parametrize("kind", KINDS)
def test_deletes_replace_and_edge_cases(kind, tmp_path: Path) -> None:
    x = clustered(1200, seed=8)
    ix = make(kind, tmp_path)
    q = x[0]
    assert ix.search(q, 10) == []
    ix.add(list(range(1, 1001)), x[:1000])
    ix.delete([1, 2, 3, 99_999])  # unknown ids are ignored
    assert ix.count() == 997 and not {1, 2, 3} & ix.ids()
    assert all(h.id not in (1, 2, 3) for h in ix.search(q, 200))
    ix.add([2], x[1000:1001])  # re-add a deleted id with a new vector
    assert ix.search(x[1000], 1)[0].id == 2
    ix.add([10], x[1001:1002])  # replace a live id: one copy, the new vector
    assert ix.count() == 998
    ids = [h.id for h in ix.search(x[1001], 2000)]
    assert len(ids) == len(set(ids)) == 998 and ids[0] == 10
    ix.add([7, 7], x[1002:1004])  # last duplicate in one call wins
    assert ix.search(x[1003], 1)[0].id == 7
    assert ix.search(q, 0) == [] and ix.search(q, 10, set()) == []
    with pytest.raises(ValueError):
        ix.search(np.zeros(DIM - 1, np.float32), 3)
    with pytest.raises(ValueError):
        ix.add([1, 2], x[:3])
    ix.delete(range(1, 2000))
    assert ix.count() == 0 and ix.search(q, 5) == []


def test_slot_map_lookups() -> None:
    m = SlotMap()
    for start in range(0, 20_000, 700):  # crosses several merges of the sorted part
        m.append(np.arange(start, start + 700) * 3)
    m.kill(m.find(np.array([0, 3, 6])))
    again = m.append(np.array([3]))
    found = m.find(np.array([0, 3, 9, 1, 59_997]))
    assert found[0] == -1 and found[1] == again[0] and found[2] == 3 and found[3] == -1
    assert m.ids_of(found[4:5])[0] == 59_997
    assert m.n_live == 20_300 - 3 + 1 and len(m.live_ids()) == m.n_live


# --------------------------------------------------------------------------------- filters


@pytest.mark.parametrize("kind", KINDS)
def test_filtered_search(kind, built, corpus) -> None:
    x, queries = corpus
    ix = built[kind]
    rng = np.random.default_rng(9)
    small = set(rng.choice(np.arange(1, 5001), 40, replace=False).tolist())
    al = np.array(sorted(small))
    for q in queries[:20]:
        hits = ix.search(q, 10, small | {10**9})  # unknown ids are skipped
        assert {h.id for h in hits} <= small and len(hits) == 10
        assert len({h.id for h in hits} & set(brute(x[al - 1], al, q, 10))) >= 9
    large = set(rng.choice(np.arange(1, 5001), 2500, replace=False).tolist())
    al = np.array(sorted(large))
    if kind == "rabitq":
        ix.exact_limit = 100  # make the large set go through the IVF with the filter
    try:
        recalls = []
        for q in queries[:30]:
            hits = ix.search(q, 10, large)
            assert len(hits) == 10 and {h.id for h in hits} <= large
            recalls.append(len({h.id for h in hits} & set(brute(x[al - 1], al, q, 10))) / 10)
        assert np.mean(recalls) >= 0.93
    finally:
        if kind == "rabitq":
            del ix.exact_limit  # back to the class default
    assert len(ix.search(queries[0], 50, {1, 2, 3})) == 3  # k above the allowed count


# ------------------------------------------------------------------------- re-clustering


def test_rabitq_reclusters_in_background_while_changes_continue(tmp_path: Path) -> None:
    x = clustered(6000, seed=10)
    ix = make("rabitq", tmp_path, min_train=400, bg=True)
    ix.pending_limit = 300
    live: dict[int, int] = {}
    stop = threading.Event()
    errors: list[BaseException] = []

    def searcher() -> None:
        while not stop.is_set():
            try:
                for h in ix.search(x[0], 20):
                    assert 1 <= h.id <= 6000
            except BaseException as exc:
                errors.append(exc)
                return

    t = threading.Thread(target=searcher)
    t.start()
    try:
        for start in range(0, 6000, 250):  # grows 15x: several rebuilds, adds/deletes during them
            batch = list(range(start + 1, start + 251))
            ix.add(batch, x[start : start + 250])
            live.update({i: i - 1 for i in batch})
            gone = batch[::5]
            ix.delete(gone)
            for i in gone:
                live.pop(i)
            ix.add(gone[:10], x[[i - 1 for i in gone[:10]]])  # revive a few
            live.update({i: i - 1 for i in gone[:10]})
        assert ix.wait_rebuild(120)
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert ix.rebuilds >= 2
    assert ix.ids() == set(live) and ix.count() == len(live)
    assert ix.details()["clusters"] == RabitqVectorIndex.clusters_for(ix._built_live)
    for i in list(live)[::97]:  # every live vector finds itself
        assert ix.search(x[live[i]], 1)[0].id == i
    ix.save(9)
    assert len(list(tmp_path.glob("vectors.*.f16"))) == 1  # old row files removed after the swap
    ix.close()
    again = make("rabitq", tmp_path)
    assert again.ids() == set(live)


def test_rabitq_reader_process_is_isolated_from_the_writer(tmp_path: Path) -> None:
    """A reader patches its own copy; the writer appends to and replaces the shared files."""
    x = clustered(2200, seed=11)
    writer = make("rabitq", tmp_path)
    writer.add(list(range(1, 1001)), x[:1000])
    writer.save(1)
    reader = make("rabitq", tmp_path)
    reader.add([5000], x[2100:2101])  # a reader's patch: private, never written to the folder
    writer.add(list(range(1001, 1601)), x[1000:1600])
    writer.save(2)  # appends rows to the shared row file
    assert reader.search(x[2100], 1)[0].id == 5000
    assert reader.search(x[10], 3)[0].id == 11 and reader.count() == 1001
    writer.delete(range(1, 801))  # churn: compaction into a new row file
    assert writer.rebuilds >= 2
    writer.save(3)  # the sidecar moves to the new file; the old one is deleted
    assert reader.search(x[500], 1)[0].id == 501  # the reader still reads the file it opened
    fresh = make("rabitq", tmp_path)
    assert fresh.saved_generation() == 3 and fresh.ids() == set(range(801, 1601))
    assert 5000 not in fresh.ids()


# ------------------------------------------------------------------------------------ auto


def test_auto_picks_full_precision_for_small_codebases() -> None:
    assert resolve_quantization("auto", 1000) == "none"
    assert resolve_quantization("auto", AUTO_QUANTIZE_ABOVE - 1) == "none"
    assert resolve_quantization("auto", AUTO_QUANTIZE_ABOVE) == "rabitq"
    assert resolve_quantization("auto", AUTO_QUANTIZE_ABOVE, store="milvus") == "int8"
    assert resolve_quantization("rabitq", 10) == "rabitq"


# ------------------------------------------------------------------------------ end to end


_QUERY_VECTORS: dict[tuple[str, str], np.ndarray] = {}


@pytest.fixture
def shared_query_vectors(monkeypatch):
    """The same queries run under each index type: embed each once per session."""
    from claude_context.embedding import Embedder

    original = Embedder.embed_query

    def embed_query(self, text: str) -> np.ndarray:
        key = (self.model_id, text)
        if key not in _QUERY_VECTORS:
            _QUERY_VECTORS[key] = original(self, text)
        return _QUERY_VECTORS[key]

    monkeypatch.setattr(Embedder, "embed_query", embed_query)


@pytest.mark.parametrize("kind", KINDS)
def test_engine_search_under_each_type(
    kind, engine, repo, expected, monkeypatch, shared_query_vectors
) -> None:
    # The fixture is small enough for the exact fallbacks: lower the thresholds so the search
    # goes through the int8 codes / the IVF + re-rank (the fallbacks are tested above).
    monkeypatch.setattr(RabitqVectorIndex, "min_train", 16)
    monkeypatch.setattr(Int8VectorIndex, "train_size", 16)
    engine.index(repo, quantization=kind)
    vectors = engine.resolve(repo)[0].store.chunk_index().vectors
    if kind == "rabitq":  # the IVF is built in the background (searches use the exact scan meanwhile)
        assert vectors.wait_rebuild(60)
    st = engine.status(repo)
    assert st.index["vector_index"] == kind and st.index["vectors"] == st.chunks
    assert st.index["vector_index_bytes"] > 0
    assert st.index["vector_index_details"]["mode"].startswith({"int8": "int8", "rabitq": "IVF"}[kind])
    first = 0
    for case in expected:
        hits = [(r.path, r.symbol) for r in engine.search(repo, case["query"], limit=5).results]
        found = [i for i, (p, s) in enumerate(hits) if p == case["path"] and case["symbol"] in s]
        assert found, f"{kind}: {case['query']!r} did not find {case['symbol']} in {hits}"
        first += found[0] == 0
    assert first >= len(expected) - 2


def test_rerank_oversample_setting_reaches_both_types(engine, repo) -> None:
    """``rerank_oversample`` (config file, env, flags) sets how many candidates are re-ranked; a
    search-time setting: a new engine on the same index uses it without rebuilding anything."""
    from claude_context.config import load_config
    from claude_context.engine import Engine

    for kind in KINDS:
        engine.index(repo, quantization=kind)
        other = Engine(load_config(env={**os.environ, "CLAUDE_CONTEXT_RERANK_OVERSAMPLE": "9"}))
        try:
            store = other.resolve(repo)[0].store
            assert other.search(repo, "parse a semantic version string", limit=3).results
            assert store.chunk_index().vectors.oversample == 9.0
            assert other.status(repo).index["vector_index_details"]["oversample"] == 9.0
        finally:
            other.close()
    with pytest.raises(Exception, match="rerank_oversample"):
        load_config(rerank_oversample=0.5)


def test_switching_quantization_rebuilds_without_embedding(engine, repo, monkeypatch) -> None:
    from claude_context.embedding import Embedder

    engine.index(repo, quantization="none")
    store = engine.resolve(repo)[0].store
    chunks = engine.status(repo).chunks

    def no_embedding(self, texts):
        raise AssertionError(f"re-embedded {len(texts)} chunks on a quantization switch")

    sizes = {}
    for quant, files in [
        ("int8", {"vectors.int8"}),
        ("rabitq", {"vectors.slots"}),
        ("none", {"vectors.hnsw"}),
    ]:
        with monkeypatch.context() as m:
            m.setattr(Embedder, "embed", no_embedding)
            report = engine.index(repo, quantization=quant)
        assert report.chunks_embedded == 0
        st = engine.status(repo)
        assert st.index["vector_index"] == ("hnsw" if quant == "none" else quant)
        assert st.index["vectors"] == chunks
        names = {p.name for p in store.folder.iterdir() if p.name.startswith("vectors")}
        assert files <= names and "vectors.json" in names
        assert not {"vectors.int8", "vectors.slots", "vectors.hnsw"} - files & names  # old type gone
        meta = json.loads((store.folder / "vectors.json").read_text())
        assert meta["count" if quant == "none" else "live"] == chunks
        assert any(n.endswith(".f16") for n in names) == (quant != "none")  # re-rank rows on disk
        sizes[quant] = st.index["vector_index_bytes"]
        assert engine.search(repo, "parse a semantic version string", limit=3).results
    assert sizes["int8"] < sizes["none"] and sizes["rabitq"] < sizes["none"]


def test_auto_switches_to_rabitq_once_the_codebase_is_large(engine, repo, monkeypatch) -> None:
    import claude_context.index.registry as factory

    monkeypatch.setattr(factory, "AUTO_QUANTIZE_ABOVE", 10_000)
    engine.index(repo, quantization="auto")  # small: full precision
    assert engine.status(repo).index["vector_index"] == "hnsw"
    monkeypatch.setattr(factory, "AUTO_QUANTIZE_ABOVE", 20)  # the fixture has ~100 chunks: "grown"
    report = engine.index(repo)  # "auto" is remembered, and re-decided on every run
    assert report.chunks_embedded == 0
    st = engine.status(repo)
    assert st.index["vector_index"] == "rabitq" and st.index["vectors"] == st.chunks


def test_auto_estimates_a_new_codebase_before_building(engine, repo, monkeypatch) -> None:
    import claude_context.index.registry as factory

    monkeypatch.setattr(factory, "AUTO_QUANTIZE_ABOVE", 20)  # ~100 chunks estimated from file sizes
    engine.index(repo, quantization="auto")
    assert engine.status(repo).index["vector_index"] == "rabitq"


@pytest.mark.parametrize("kind", KINDS)
def test_status_and_search_while_another_thread_writes(kind, tmp_path: Path) -> None:
    """Readers (search, status figures) never fail while a writer adds, deletes and saves.
    rabitqlib raises "Index is busy" for a call that overlaps one of its writes; a status read
    of ``num_clusters`` outside our lock once did, mid-freshness-bench (a race this small test
    rarely hits: the status figures now come from our own copies, never from rabitqlib)."""
    x = clustered(22000, seed=11)
    ix = make(kind, tmp_path)
    ix.pending_limit = 100  # rabitq: every add below goes into the IVF (the write that collided)
    ix.add(list(range(1, 20001)), x[:20000])
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        i = 0
        while not stop.is_set():
            try:
                ix.search(x[i % 20000], 10)
                ix.resident_bytes()
                ix.details()
            except Exception as exc:
                errors.append(repr(exc))
            i += 1

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for g in range(8):
            lo = 20001 + g * 250
            ix.add(list(range(lo, lo + 250)), x[lo - 1 : lo + 249])
            ix.delete(range(g * 50 + 1, g * 50 + 26))
            ix.save(g + 1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert ix.count() == 22000 - 8 * 25
