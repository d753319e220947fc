"""Watch mode on real files with the real watchdog observer: every change reaches the index (and
only changes do), in one update per burst, and failures become watcher state, never a crash."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import files, wait_for

from claude_context.changes import plan_paths
from claude_context.watcher import WatchService, format_update, is_editor_temp

TIMEOUT = 30.0


def has_name(hit, name: str) -> bool:
    """A merged result names every symbol it spans: "Ledger.post, reconcile_totals"."""
    return any(s.split(".")[-1] == name for s in hit.symbol.split(", "))


def has_symbol(engine, repo: Path, name: str) -> bool:
    hits = engine.search(repo, name, mode="keyword", limit=5).results
    return any(has_name(h, name) for h in hits)


def consistent(engine, repo: Path) -> None:
    """The files table, chunks and both derived indexes agree."""
    store = engine.resolve(repo)[0].store
    vec_ids, kw_ids = store.chunk_index().ids()
    db_ids = store.meta.chunk_ids()
    assert vec_ids == db_ids and kw_ids == db_ids


def service(engine, roots, **kw) -> WatchService:
    opts = dict(debounce=0.1, max_delay=1.0, lock_wait=0.5, busy_retry=0.2, persist_idle=1.0)
    opts.update(poll_interval=0.3, **kw)
    return WatchService(engine, roots, **opts)


@pytest.fixture
def watched(engine, repo):
    engine.index(repo)
    updates: list = []
    svc = service(engine, [repo], on_update=lambda root, r: updates.append(r)).start()
    assert svc.wait_idle(TIMEOUT)
    w = svc.get(repo)
    wait_for(lambda: w.state == "watching", what="watching state")
    svc.updates = updates  # type: ignore[attr-defined]
    yield engine, svc, repo
    svc.stop()


def test_edit_add_delete(watched):
    engine, svc, repo = watched
    ledger = repo / "app" / "ledger.py"
    added = "\n\ndef reconcile_quarterly_totals(rows):\n    return sum(rows)\n"
    ledger.write_text(ledger.read_text() + added)
    wait_for(lambda: has_symbol(engine, repo, "reconcile_quarterly_totals"), what="edited symbol")

    (repo / "app" / "fresh.py").write_text("def brand_new_helper_fn(x):\n    return x * 2\n")
    wait_for(lambda: has_symbol(engine, repo, "brand_new_helper_fn"), what="added file")
    # keywords first; the file's row lands once its vectors are in (progressive availability)
    wait_for(lambda: "app/fresh.py" in files(engine, repo), what="file row")

    (repo / "app" / "fresh.py").unlink()
    wait_for(lambda: "app/fresh.py" not in files(engine, repo), what="deleted file")
    assert not has_symbol(engine, repo, "brand_new_helper_fn")
    # a semantic search finds the edit too: its vector is in the live index
    hits = engine.search(repo, "sum the quarterly rows", mode="semantic", limit=5).results
    assert any(has_name(h, "reconcile_quarterly_totals") for h in hits)
    consistent(engine, repo)
    assert svc.get(repo).stats.errors == 0


def test_rename_and_directory_move(watched):
    engine, _svc, repo = watched
    (repo / "app" / "slugs.py").rename(repo / "app" / "slugify.py")
    wait_for(lambda: "app/slugify.py" in files(engine, repo), what="renamed file")
    assert "app/slugs.py" not in files(engine, repo)

    before = {p for p in files(engine, repo) if p.startswith("web/")}
    assert len(before) >= 4
    shutil.move(str(repo / "web"), str(repo / "frontend"))
    expected = {"frontend/" + p[len("web/") :] for p in before}
    wait_for(lambda: expected <= files(engine, repo), what="moved folder's files")
    wait_for(lambda: not any(p.startswith("web/") for p in files(engine, repo)), what="old folder gone")
    hits = engine.search(repo, "SearchBox", mode="keyword", limit=5).results
    assert hits and all(not h.path.startswith("web/") for h in hits)
    consistent(engine, repo)


def test_burst_of_200_files_is_one_update(watched):
    engine, svc, repo = watched
    w = svc.get(repo)
    batches = w.stats.batches
    burst = repo / "burst"
    burst.mkdir()
    for i in range(200):
        (burst / f"gen_{i:03d}.py").write_text(f"def generated_value_{i}():\n    return {i}\n")
    wait_for(lambda: len([p for p in files(engine, repo) if p.startswith("burst/")]) == 200, 90, "200 files")
    assert svc.wait_idle(TIMEOUT)
    assert w.stats.batches - batches <= 2, w.stats  # debounced: not one update per file
    assert has_symbol(engine, repo, "generated_value_137")
    consistent(engine, repo)


def test_atomic_save_and_editor_files(watched):
    engine, svc, repo = watched
    target = repo / "app" / "slugs.py"
    # how editors save atomically: write a temp file beside it, then rename it over the original
    tmp = repo / "app" / ".slugs.py.tmp.4242"
    tmp.write_text("def atomically_saved_function():\n    return 'ok'\n")
    os.replace(tmp, target)
    # vim-style: backup by rename, write anew, drop the backup; plus swap/lock files around it
    (repo / "app" / "4913").write_text("")
    (repo / "app" / "4913").unlink()
    (repo / "app" / ".ledger.py.swp").write_bytes(b"\0swap")
    ledger = repo / "app" / "ledger.py"
    ledger.rename(repo / "app" / "ledger.py~")
    ledger.write_text("def written_after_backup():\n    return 1\n")
    (repo / "app" / "ledger.py~").unlink()
    wait_for(lambda: has_symbol(engine, repo, "atomically_saved_function"), what="atomic save")
    wait_for(lambda: has_symbol(engine, repo, "written_after_backup"), what="backup-style save")
    assert svc.wait_idle(TIMEOUT)
    indexed = files(engine, repo)
    assert {"app/slugs.py", "app/ledger.py"} <= indexed
    assert not {p for p in indexed if p.endswith(("~", ".swp", "4913")) or ".tmp." in p}
    consistent(engine, repo)


def test_edit_to_ignored_files_does_no_work(watched):
    engine, svc, repo = watched
    start = svc.get(repo).stats.batches
    (repo / ".gitignore").write_text("generated/\n")
    wait_for(lambda: svc.get(repo).stats.batches > start, what="gitignore reconcile")
    assert svc.wait_idle(TIMEOUT)
    (repo / "generated").mkdir()
    (repo / "node_modules" / "lib").mkdir(parents=True)
    w = svc.get(repo)
    batches, ignored = w.stats.batches, w.stats.ignored
    for i in range(5):
        (repo / "generated" / f"out_{i}.py").write_text(f"x = {i}\n")
        (repo / "node_modules" / "lib" / f"m{i}.js").write_text("module.exports = 1\n")
        (repo / "app" / f"cache_{i}.pyc").write_bytes(b"\0\1")
    time.sleep(1.0)  # several debounce windows
    assert w.stats.ignored >= ignored + 15
    assert w.stats.batches == batches, w.stats
    assert not any(p.startswith(("generated/", "node_modules/")) for p in files(engine, repo))


def test_gitignore_change_reconciles(watched):
    engine, _svc, repo = watched
    assert "scripts/backup.sh" in files(engine, repo)
    (repo / ".gitignore").write_text("scripts/\n")
    wait_for(lambda: not any(p.startswith("scripts/") for p in files(engine, repo)), what="newly ignored")
    (repo / ".gitignore").write_text("")
    wait_for(lambda: "scripts/backup.sh" in files(engine, repo), what="un-ignored again")


def test_root_removed_while_watching(engine, repo, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "main.py").write_text("def other_root_fn():\n    return 0\n")
    engine.index(repo)
    engine.index(other)
    svc = service(engine, [repo, other]).start()
    try:
        assert svc.wait_idle(TIMEOUT)
        shutil.rmtree(repo)
        w = svc.get(repo)
        wait_for(lambda: w.state == "error", what="error state")
        assert "removed" in w.message
        st = engine.status(other)
        assert st.status == "indexed"
        assert engine.status(repo).watcher == "error"
        # the index is kept (a removed checkout may come back) and still answers
        assert engine.search(repo, "ledger", mode="keyword").results
        # the other root is still watched
        (other / "main.py").write_text("def other_root_changed():\n    return 1\n")
        wait_for(lambda: has_symbol(engine, other, "other_root_changed"), what="other root update")
        # the root comes back: reconciled and watched again
        repo.mkdir()
        (repo / "back.py").write_text("def came_back_fn():\n    return 2\n")
        wait_for(lambda: w.state == "watching", what="watching again")
        wait_for(lambda: has_symbol(engine, repo, "came_back_fn"), what="reconcile after return")
        assert files(engine, repo) == {"back.py"}
    finally:
        svc.stop()


def test_polling_when_events_unavailable(engine, repo, monkeypatch):
    from watchdog.observers.api import BaseObserver

    def no_watches(self, *a, **kw):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(BaseObserver, "schedule", no_watches)
    engine.index(repo)
    svc = service(engine, [repo]).start()
    try:
        w = svc.get(repo)
        wait_for(lambda: w.state == "polling", what="polling state")
        assert "inotify watch limit" in w.message and "max_user_watches" in w.message
        st = engine.status(repo)
        assert st.watcher == "polling" and "limit" in st.watcher_message
        (repo / "app" / "polled.py").write_text("def found_by_polling():\n    return 3\n")
        wait_for(lambda: has_symbol(engine, repo, "found_by_polling"), what="polled change")
        assert w.stats.polls > 0
    finally:
        svc.stop()


def test_reconcile_at_start_and_branch_switch(engine, repo):
    """Work done while nothing watched is applied at start; switching back embeds nothing."""
    engine.index(repo)
    (repo / "app" / "ledger.py").write_text("def offline_edit_fn():\n    return 4\n")
    (repo / "README.md").unlink()
    (repo / "offline.py").write_text("def offline_added_fn():\n    return 5\n")
    svc = service(engine, [repo]).start()
    try:
        assert svc.wait_idle(TIMEOUT)
        assert has_symbol(engine, repo, "offline_edit_fn") and has_symbol(engine, repo, "offline_added_fn")
        assert "README.md" not in files(engine, repo)
    finally:
        svc.stop()
    noop = engine.update(repo)
    assert noop.full_scan and not noop.applied and noop.files_changed == 0
    # a "branch switch": rewrite files to B, then back to A (seen before): nothing re-embedded
    originals = {p: p.read_text() for p in sorted((repo / "web").rglob("*")) if p.is_file()}
    for i, p in enumerate(originals):
        p.write_text(originals[p] + f"\n// branch b change {i} unique_branch_marker_{i}\n")
    to_b = engine.update(repo)
    assert to_b.files_changed == len(originals) and to_b.chunks_embedded > 0
    for p, text in originals.items():
        p.write_text(text)
    back = engine.update(repo)
    assert back.files_changed == len(originals) and back.chunks_embedded == 0
    consistent(engine, repo)


def test_status_shows_watcher_and_last_change(watched):
    engine, svc, repo = watched
    st = engine.status(repo)
    assert st.watcher == "watching" and st.watcher_pid == os.getpid()
    before = st.last_change_at or 0.0
    time.sleep(0.05)
    (repo / "status_probe.py").write_text("def status_probe_fn():\n    return 6\n")
    wait_for(lambda: (engine.status(repo).last_change_at or 0) > before, what="last change time")
    assert svc.updates and "status_probe.py" in format_update(repo, svc.updates[-1])
    svc.stop()
    assert engine.status(repo).watcher == "off"


def test_unsaved_vectors_are_saved_when_idle(watched):
    engine, _svc, repo = watched
    store = engine.resolve(repo)[0].store
    (repo / "persist_me.py").write_text("def persisted_later_fn():\n    return 7\n")
    wait_for(lambda: "persist_me.py" in files(engine, repo), what="update with its vectors")
    index = store.chunk_index()
    assert index.generations()[0] < store.meta.generation()  # updates do not rewrite the vector file
    # persist_idle is 1 s here: then the vector file is saved, stamped with the current generation
    wait_for(lambda: index.generations()[0] == store.meta.generation(), 15, "durable save")
    assert index.generation() == store.meta.generation()


def test_plan_paths_matches_full_walk(tmp_path):
    """The targeted scan decides like discovery: ignored, too large, folders, deletions."""
    from claude_context.discovery import DiscoveryOptions
    from claude_context.index.truth.metadata import FileState

    root = tmp_path / "r"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("a = 1\n")
    (root / "pkg" / "sub" / "b.py").write_text("b = 2\n")
    (root / "pkg" / "big.py").write_text("x" * 5000)
    (root / "pkg" / "node_modules").mkdir()
    (root / "pkg" / "node_modules" / "n.js").write_text("1")
    (root / ".env").write_text("SECRET=1")
    states = {
        "gone/old.py": FileState("gone/old.py", 1, 1, "h"),
        "gone/deeper/x.py": FileState("gone/deeper/x.py", 1, 1, "h"),
        "pkg/removed.py": FileState("pkg/removed.py", 1, 1, "h"),
    }
    opts = DiscoveryOptions(max_file_bytes=1000)
    plan = plan_paths(root, opts, states, ["pkg", "gone", ".env", "pkg/node_modules/n.js"])
    assert sorted(e.path for e in plan.changed) == ["pkg/a.py", "pkg/sub/b.py"]
    assert sorted(plan.deleted) == ["gone/deeper/x.py", "gone/old.py", "pkg/removed.py"]
    assert not plan.needs_full
    (root / "pkg" / "link.py").symlink_to(root / "pkg" / "a.py")
    assert plan_paths(root, opts, states, ["pkg/link.py"]).needs_full
    assert is_editor_temp(".#ledger.py") and is_editor_temp("ledger.py~") and not is_editor_temp("ledger.py")


def test_clear_while_watching_and_unfinished_first_run(engine, repo, tmp_path):
    from claude_context.errors import NeedsFullIndex

    engine.index(repo)
    svc = service(engine, [repo]).start()
    try:
        assert svc.wait_idle(TIMEOUT)
        store = engine.resolve(repo)[0].store
        folder = store.folder
        engine.clear(repo)
        (repo / "after_clear.py").write_text("x = 1\n")  # an event for a codebase that is gone
        wait_for(lambda: svc.get(repo) is None, what="watch dropped")
        time.sleep(0.5)
        assert not folder.exists()  # the watcher did not bring the cleared index back
    finally:
        svc.stop()
    # an index whose first run never completed is not finished behind the user's back
    other = tmp_path / "other"
    other.mkdir()
    (other / "m.py").write_text("def m():\n    return 1\n")
    engine.index(other)
    store = engine.resolve(other)[0].store
    with store.meta.transaction() as con:
        con.execute("DELETE FROM meta WHERE key = 'indexed_settings'")
    with pytest.raises(NeedsFullIndex, match="has not completed"):
        engine.update(other)
    svc = service(engine, [other]).start()
    try:
        w = svc.get(other)
        wait_for(lambda: "has not completed" in w.message, what="waiting message")
        assert w.stats.applied == 0
    finally:
        svc.stop()


def test_mcp_server_watches_and_reports(engine, repo, home):
    """``serve`` reconciles and watches indexed codebases; get_indexing_status shows the watcher."""
    import sys

    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    n = engine.index(repo).files_total
    text = (repo / "app" / "slugs.py").read_text()
    (repo / "app" / "slugs.py").unlink()  # changed while no server ran: reconciled at its start
    engine.close()

    async def status(s: ClientSession) -> dict:
        res = await s.call_tool("get_indexing_status", {"path": str(repo)})
        assert not res.is_error and res.structured_content is not None
        return res.structured_content | {"text": " ".join(getattr(c, "text", "") for c in res.content)}

    @contextlib.asynccontextmanager
    async def session(*args: str, env: dict[str, str]) -> AsyncIterator[ClientSession]:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "claude_context.cli", "serve", *args], env=env
        )
        with open(home / f"serve-{time.monotonic_ns()}.log", "w") as log:
            async with stdio_client(params, errlog=log) as (r, w), ClientSession(r, w) as s:
                await s.initialize()
                yield s

    async def until(s: ClientSession, cond: Callable[[dict], bool]) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while not cond(st := await status(s)):
            assert time.monotonic() < deadline, st
            await anyio.sleep(0.1)
        return st

    async def watching() -> None:
        env = dict(os.environ, CLAUDE_CONTEXT_HOME=str(home), HF_HUB_OFFLINE="1")
        async with session(env=env) as s:
            st = await until(s, lambda st: st["watcher"] == "watching" and st["files"] == n - 1)
            assert st["last_change_at"] and "Watcher: watching" in st["text"]
            (repo / "app" / "slugs.py").write_text(text)  # cached vectors: no model load needed
            await until(s, lambda st: st["files"] == n)
        env_off = dict(env, CLAUDE_CONTEXT_WATCH="1")
        async with session("--no-watch", env=env_off) as s:  # the flag beats the environment
            await anyio.sleep(1.0)
            st = await status(s)
            assert st["watcher"] == "off" and "Watcher: off" in st["text"], st

    anyio.run(watching)


def test_codebase_inside_the_home_and_home_inside_the_codebase(engine, home, repo, tmp_path):
    """The index's own folder is skipped only where it lies inside the codebase: a codebase kept
    inside the home (as the benches do) is still watched, and indexing a folder that holds the
    home never indexes, or reacts to, the index's own files."""
    inner = home / "corpus"
    shutil.copytree(repo, inner)
    outer = tmp_path  # holds the home (cc-home) and the repo
    engine.index(inner)
    engine.index(outer)
    outer_files = files(engine, outer)
    assert any(p.startswith("repo/") for p in outer_files)
    assert not any(p.startswith(f"{home.name}/") for p in outer_files)
    svc = service(engine, [inner, outer]).start()
    try:
        assert svc.wait_idle(TIMEOUT)
        for root, where in ((inner, inner), (outer, repo)):
            name = f"settle_{root.name.replace('-', '_')}_totals"
            ledger = where / "app" / "ledger.py"
            ledger.write_text(ledger.read_text() + f"\n\ndef {name}(rows):\n    return rows\n")
            wait_for(lambda r=root, n=name: has_symbol(engine, r, n), what=f"edit seen in {root}")
        assert svc.wait_idle(TIMEOUT)
        assert not any(p.startswith(f"{home.name}/") for p in files(engine, outer))
    finally:
        svc.stop()
