import itertools
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from claude_context.index.vectors.hnsw import HnswVectorIndex, MemoryHnswIndex

DIM = 384


def clustered(n: int, dim: int = DIM, clusters: int = 50, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    x = centers[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def unit(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    s = x @ q
    return ids[np.argsort(-s, kind="stable")[:k]].tolist()


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, np.ndarray]:
    x = clustered(5100)
    return x[:5000], x[5000:]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, corpus: tuple[np.ndarray, np.ndarray]) -> HnswVectorIndex:
    x, _ = corpus
    ix = HnswVectorIndex(tmp_path_factory.mktemp("big"), DIM)
    ix.add(list(range(1, 5001)), x)
    return ix


def test_recall_at_10(big: HnswVectorIndex, corpus: tuple[np.ndarray, np.ndarray]) -> None:
    x, queries = corpus
    ids = np.arange(1, 5001)
    recalls = []
    for q in queries:
        got = [h.id for h in big.search(q, 10)]
        assert len(got) == 10 and len(set(got)) == 10
        recalls.append(len(set(got) & set(brute(x, ids, q, 10))) / 10)
    assert np.mean(recalls) >= 0.95
    hits = big.search(queries[0], 10)
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))  # best first
    assert hits[0].score == pytest.approx(float(x[hits[0].id - 1] @ queries[0]), abs=1e-5)  # cosine


def test_allowed_small_set_is_exact(big: HnswVectorIndex, corpus: tuple[np.ndarray, np.ndarray]) -> None:
    x, queries = corpus
    rng = np.random.default_rng(1)
    allowed = set(rng.choice(np.arange(1, 5001), 300, replace=False).tolist())
    al = np.array(sorted(allowed))
    for q in queries[:20]:
        hits = big.search(q, 10, allowed)
        assert [h.id for h in hits] == brute(x[al - 1], al, q, 10)
        expected = np.sort(x[al - 1] @ q)[::-1][:10]
        np.testing.assert_allclose([h.score for h in hits], expected, rtol=1e-5, atol=1e-6)


def test_allowed_large_set_uses_filter(big: HnswVectorIndex, corpus: tuple[np.ndarray, np.ndarray]) -> None:
    x, queries = corpus
    rng = np.random.default_rng(2)
    allowed = set(rng.choice(np.arange(1, 5001), 2500, replace=False).tolist())
    assert len(allowed) > big.exact_limit  # this exercises the hnswlib filter callback
    al = np.array(sorted(allowed))
    recalls = []
    for q in queries[:50]:
        hits = big.search(q, 10, allowed)
        assert len(hits) == 10 and {h.id for h in hits} <= allowed
        recalls.append(len({h.id for h in hits} & set(brute(x[al - 1], al, q, 10))) / 10)
    assert np.mean(recalls) >= 0.95


def test_allowed_edge_cases(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = unit(rng, 50)
    ix = HnswVectorIndex(tmp_path, 32)
    ix.add(list(range(1, 51)), x)
    ix.delete([3])
    assert ix.search(x[0], 10, set()) == []
    assert [h.id for h in ix.search(x[2], 10, {3, 4, 999})] == [4]  # deleted and unknown ids skipped
    ix.exact_limit = 5  # force the filter path on a small index
    hits = ix.search(x[2], 10, set(range(1, 21)))
    assert {h.id for h in hits} <= set(range(1, 21)) - {3} and len(hits) == 10
    assert len(ix.search(x[2], 50, set(range(1, 21)))) == 19  # k above the allowed count is clamped


def test_k_larger_than_count_and_empty(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    ix = HnswVectorIndex(tmp_path, 32)
    q = unit(rng, 1)[0]
    assert ix.search(q, 10) == []
    x = unit(rng, 7)
    ix.add([10, 20, 30, 40, 50, 60, 70], x)
    ix.delete([20, 40])
    hits = ix.search(q, 100)
    assert sorted(h.id for h in hits) == [10, 30, 50, 60, 70]
    assert ix.search(q, 0) == []
    with pytest.raises(ValueError):
        ix.search(np.zeros(31, dtype=np.float32), 3)


def test_replace_and_delete_semantics(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    x = unit(rng, 100)
    ix = HnswVectorIndex(tmp_path, 32)
    ix.add(list(range(1, 101)), x)
    new5 = unit(rng, 1)
    ix.add([5], new5)  # replace a live id in place
    assert ix.count() == 100
    top = ix.search(new5[0], 3)
    assert top[0].id == 5 and top[0].score == pytest.approx(1.0, abs=1e-5)
    assert all(h.id != 5 for h in ix.search(x[4], 100) if h.score > 0.999)
    np.testing.assert_allclose(ix.get_vectors([5])[0], new5[0], atol=1e-6)

    ix.delete([7, 8, 12345])  # unknown ids are ignored
    assert ix.count() == 98 and 7 not in ix.ids() and 8 not in ix.ids()
    assert all(h.id not in (7, 8) for h in ix.search(x[6], 100))
    with pytest.raises(KeyError):
        ix.get_vectors([7])

    ix.add([7], x[6:7])  # deleted slot still owned by 7: revived in place
    assert ix.count() == 99 and ix.search(x[6], 1)[0].id == 7

    ix.add([1000], x[7:8])  # takes the vacant slot of 8
    ix.add([8], x[7:8] * -1)  # 8's slot is gone: must come back as a fresh element, once
    assert ix.count() == 101
    ids = [h.id for h in ix.search(x[0], 200)]
    assert len(ids) == len(set(ids)) == 101
    assert ix.search(-x[7], 1)[0].id == 8
    assert ix.search(x[7], 1)[0].id == 1000
    assert ix.ids() == set(range(1, 101)) | {1000}


def test_reuse_of_deleted_slots_never_duplicates(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    x = unit(rng, 400)
    ix = HnswVectorIndex(tmp_path, 32, initial_capacity=64)
    live: dict[int, int] = {}
    for step in range(8):  # churn: delete half, re-add some old ids and some new ones
        batch = list(range(1 + step * 30, 1 + step * 30 + 60))
        ix.add(batch, x[[i % 400 for i in batch]])
        live.update({i: i % 400 for i in batch})
        gone = batch[::2]
        ix.delete(gone)
        for i in gone:
            live.pop(i)
    assert ix.ids() == set(live) and ix.count() == len(live)
    ids = [h.id for h in ix.search(x[0], 10_000)]
    assert sorted(ids) == sorted(live)
    assert ix.capacity() <= 256  # deleted slots were reused rather than growing forever


def test_duplicate_ids_in_one_batch_last_wins(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    x = unit(rng, 3)
    ix = HnswVectorIndex(tmp_path, 32)
    ix.add([1, 1, 2], x)
    assert ix.count() == 2
    assert ix.search(x[1], 1)[0].id == 1
    with pytest.raises(ValueError):
        ix.add([1, 2], x)  # 2 ids for 3 vectors


def test_growth_past_initial_capacity(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    x = unit(rng, 1000)
    ix = HnswVectorIndex(tmp_path, 32, initial_capacity=16)
    for s in range(0, 1000, 100):
        ix.add(list(range(s + 1, s + 101)), x[s : s + 100])
    assert ix.count() == 1000 and ix.capacity() >= 1000
    assert ix.resident_bytes() >= ix.capacity() * 32 * 4
    found = sum(ix.search(x[i], 1)[0].id == i + 1 for i in range(0, 1000, 10))
    assert found >= 98


def test_an_in_memory_index_has_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The static table's graph: it searches like any other, on one thread if asked, never reads
    or writes a file, and says so if asked to save."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(3)
    x = unit(rng, 300)
    (tmp_path / "vectors.hnsw").write_bytes(b"not an index")  # never read
    idx = MemoryHnswIndex(32, ef_search=64)
    idx.add_threads = 1
    idx.add(list(range(300)), x)
    idx.delete([0])
    assert idx.count() == 299 and idx.search(x[1], 1)[0].id == 1
    assert 0 not in {h.id for h in idx.search(x[0], 10)}
    with pytest.raises(ValueError, match="in-memory"):
        idx.save(1)
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.hnsw"]


def test_save_reload_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    x = unit(rng, 300)
    ix = HnswVectorIndex(tmp_path, 32)
    assert ix.saved_generation() is None
    ix.add(list(range(1, 301)), x)
    ix.delete(range(1, 51))
    ix.add([1000], x[:1])  # reuses one deleted slot
    ix.save(42)
    assert ix.saved_generation() == 42
    meta = json.loads((tmp_path / "vectors.json").read_text())
    assert meta["generation"] == 42 and meta["count"] == 251 and meta["dim"] == 32
    assert not list(tmp_path.glob("*.tmp"))

    again = HnswVectorIndex(tmp_path, 32)
    assert again.saved_generation() == 42
    assert again.ids() == ix.ids() == set(range(51, 301)) | {1000}
    q = unit(rng, 1)[0]
    assert [h.id for h in again.search(q, 20)] == [h.id for h in ix.search(q, 20)]
    again.add([5], x[4:5])  # a label deleted before the save comes back once
    assert again.search(x[4], 1)[0].id == 5 and again.count() == 252
    again.save(43)
    assert HnswVectorIndex(tmp_path, 32).saved_generation() == 43

    assert HnswVectorIndex(tmp_path, 16).saved_generation() is None  # other dim: start empty
    assert HnswVectorIndex(tmp_path / "nothing", 32).count() == 0


@pytest.mark.parametrize("damage", ["truncate", "garbage", "bad_sidecar", "no_sidecar", "consistent_garbage"])
def test_corrupt_files_start_empty(tmp_path: Path, damage: str) -> None:
    rng = np.random.default_rng(10)
    ix = HnswVectorIndex(tmp_path, 32)
    ix.add(list(range(1, 201)), unit(rng, 200))
    ix.save(3)
    f, side = tmp_path / "vectors.hnsw", tmp_path / "vectors.json"
    size = f.stat().st_size
    if damage == "truncate":
        with open(f, "r+b") as fh:
            fh.truncate(size // 2)
    elif damage == "garbage":
        f.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    elif damage == "bad_sidecar":
        side.write_text("{not json")
    elif damage == "no_sidecar":
        side.unlink()
    else:  # garbage whose size and checksum match the sidecar: only the header checks catch it
        import zlib

        junk = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        f.write_bytes(junk)
        meta = json.loads(side.read_text())
        meta["crc32"] = zlib.crc32(junk)
        side.write_text(json.dumps(meta))
    fresh = HnswVectorIndex(tmp_path, 32)
    assert fresh.saved_generation() is None and fresh.count() == 0
    fresh.add([1], unit(rng, 1))  # and it is usable
    assert fresh.search(unit(rng, 1)[0], 5)[0].id == 1


def test_concurrent_search_during_adds_and_deletes(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    x = unit(rng, 6000, dim=64)
    ix = HnswVectorIndex(tmp_path, 64, initial_capacity=256)
    ix.add_slice = 64  # many small write sections interleaved with searches
    ix.add(list(range(1, 501)), x[:500])
    deleted: set[int] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for s in range(500, 6000, 250):
                ix.add(list(range(s + 1, s + 251)), x[s : s + 250])  # grows -> resizes
                gone = list(range(s - 249, s + 1, 3))
                ix.delete(gone)
                deleted.update(gone)  # recorded only after delete() returned
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=writer)
    t.start()
    searches = 0
    deadline = time.monotonic() + 15
    while (not done.is_set() or searches < 50) and time.monotonic() < deadline:
        before = set(deleted)
        q = x[rng.integers(0, 6000)]
        hits = ix.search(q, 20)
        hits += ix.search(q, 5, set(range(1, 400)))
        hits += ix.search(q, 5, set(range(1, 3000)))
        assert not {h.id for h in hits} & before
        searches += 1
    t.join()
    assert not errors
    assert searches >= 50
    assert ix.ids() == set(range(1, 6001)) - deleted
