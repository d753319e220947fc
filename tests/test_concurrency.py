"""One writer at a time per codebase across processes and threads; readers never wait; a writer
killed mid-update leaves an index that reopens consistent with the disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import files
from conftest import wait_for as _wait_for

from claude_context.discovery import discover
from claude_context.errors import IndexBusyError
from claude_context.index.truth.lock import WriteLock

TIMEOUT = 60.0


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "claude_context.cli", *args]


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CLAUDE_CONTEXT_HOME=str(home), COLUMNS="200")
    return subprocess.run(cli(*args), env=env, capture_output=True, text=True, timeout=120)


def wait_for(cond, timeout: float = TIMEOUT, what: str = "condition") -> None:
    _wait_for(cond, timeout, what)


def on_disk(repo: Path) -> set[str]:
    return {e.path for e in discover(repo)}


def assert_agrees_with_disk(engine, repo: Path) -> None:
    store = engine.resolve(repo)[0].store
    assert files(engine, repo) == on_disk(repo)
    store.repair(store.model_id, durable=False)
    vec_ids, kw_ids = store.chunk_index().ids()
    db_ids = store.meta.chunk_ids()
    assert vec_ids == db_ids and kw_ids == db_ids
    assert store.meta.pending_count() == 0


def hold_lock(lock_path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the codebase's write lock (prints "locked" once it has it)."""
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom claude_context.index.truth.lock import WriteLock\n"
        f"held = WriteLock(Path({str(lock_path)!r})).acquire()\nprint('locked', flush=True)\n"
        f"time.sleep({seconds})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_threads_of_one_process_take_turns(tmp_path):
    released: list[int] = []
    lock = WriteLock(tmp_path / "write.lock", on_release=lambda: released.append(1))
    lock.acquire()
    assert lock.acquire() is lock  # the holder may ask again
    errors: list[Exception] = []

    def second() -> None:
        try:
            lock.acquire(timeout=0.2)
        except IndexBusyError as exc:
            errors.append(exc)

    t = threading.Thread(target=second)
    t.start()
    t.join()
    assert errors and "this process" in str(errors[0])
    got = threading.Event()

    def waiter() -> None:
        lock.acquire(timeout=10)
        got.set()
        lock.release()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.2)
    assert not got.is_set()
    lock.release()
    t.join(10)
    assert got.is_set() and len(released) == 2


def test_second_writer_waits_or_reports_busy(engine, repo, home):
    engine.index(repo)
    store = engine.resolve(repo)[0].store
    holder = hold_lock(store.folder / "write.lock", 120.0)
    try:
        with pytest.raises(IndexBusyError, match=rf"index busy: another process \(pid {holder.pid}\)"):
            engine.index(repo)
        (repo / "while_locked.py").write_text("def added_while_locked():\n    return 1\n")
        with pytest.raises(IndexBusyError, match="index busy"):
            engine.update(repo, ["while_locked.py"])
        # readers and no-op reconciliation never wait for the writer
        t0 = time.perf_counter()
        assert engine.search(repo, "ledger balance", limit=3).results
        assert not engine.update(repo, ["app/ledger.py"]).applied
        assert time.perf_counter() - t0 < 3.0
        proc = run_cli(home, "index", str(repo))
        assert proc.returncode == 1 and "index busy" in proc.stderr and "Traceback" not in proc.stderr
        # a writer that waits gets its turn once the holder is gone (even killed: no wedge)
        threading.Timer(1.0, holder.kill).start()
        report = engine.update(repo, ["while_locked.py"], lock_timeout=30)
        assert report.applied and report.files_changed == 1
        assert holder.poll() is not None  # it only got the lock once the holder had died
    finally:
        holder.kill()
        holder.wait()
    assert_agrees_with_disk(engine, repo)


def _start_watch(repo: Path, home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cli("watch", str(repo), "--json", "--debounce", "0.1"),
        env=dict(os.environ, CLAUDE_CONTEXT_HOME=str(home)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _watching(engine, repo: Path, pid: int) -> bool:
    st = engine.status(repo)
    return st.watcher == "watching" and st.watcher_pid == pid


def test_two_processes_write_one_index(engine, repo, home, tmp_path):
    """A watcher process and this process both write; each waits for the other's lock, the
    keyword index's own writer lock is handed over too, and the result agrees with the disk."""
    engine.index(repo)
    watcher = _start_watch(repo, home)
    parked = tmp_path / "parked"
    parked.mkdir()
    # the watcher's changes: fixture files taken away and put back (their vectors are cached, so
    # the other process never loads the model); this process adds new files in between
    moved = ["app/slugs.py", "scripts/mailer.rb", "game/loot.lua"]
    try:
        wait_for(lambda: _watching(engine, repo, watcher.pid), what="the other process watching")
        for i, rel in enumerate(moved):
            (repo / rel).rename(parked / f"{i}")
            wait_for(lambda rel=rel: rel not in files(engine, repo), what="watcher applies a delete")
            # this process writes right after (a forced re-chunk: every chunk rewritten, vectors
            # from the cache): the other one must have let go of both locks; meanwhile a file
            # comes back, so the watcher's update waits for this process's lock
            (parked / f"{i}").rename(repo / rel)
            report = engine.index(repo, force=True, lock_timeout=30)
            assert report.files_changed >= len(files(engine, repo)) - 1 and report.chunks_embedded == 0
            wait_for(lambda rel=rel: rel in files(engine, repo), what="watcher applies an add")
        hits = engine.search(repo, "slugify", mode="keyword").results
        assert any(h.path == "app/slugs.py" for h in hits)
        assert engine.status(repo).watcher_pid == watcher.pid
        watcher.send_signal(signal.SIGTERM)  # a clean stop saves its vector index and leaves
        assert watcher.wait(60) == 0, watcher.stderr.read() if watcher.stderr else ""
        assert engine.status(repo).watcher == "off"
    finally:
        if watcher.poll() is None:
            os.killpg(watcher.pid, signal.SIGKILL)
            watcher.wait()
    assert_agrees_with_disk(engine, repo)


def test_kill_9_watcher_mid_update(engine, repo, home):
    engine.index(repo)
    watcher = _start_watch(repo, home)
    n = 60  # chunked in-thread (fewer than the pipeline's worker-process threshold)
    try:
        wait_for(lambda: _watching(engine, repo, watcher.pid), what="the other process watching")
        gen = repo / "generated_pkg"
        gen.mkdir()
        for i in range(n):
            (gen / f"unit_{i:03d}.py").write_text(
                f'def compute_unit_{i}(value):\n    """Scale reading {i}."""\n    return value * {i}\n'
            )
        # kill once the update is half applied: chunks staged (keyword-searchable), vectors pending
        store = engine.resolve(repo)[0].store

        def staged() -> bool:
            done = sum(1 for p in store.meta.file_states() if p.startswith("generated_pkg/"))
            assert done < n, "the update finished before it could be interrupted"
            return store.meta.pending_count() > 0

        wait_for(staged, 120, "part of the update")
        os.killpg(watcher.pid, signal.SIGKILL)
        watcher.wait()
        assert engine.search(repo, "compute_unit_7", mode="keyword").results  # the staged part
    finally:
        if watcher.poll() is None:
            os.killpg(watcher.pid, signal.SIGKILL)
            watcher.wait()
    assert engine.status(repo).watcher == "off"  # its pid is gone: not reported as live
    # reopen: the lock died with the process, and a reconcile completes the interrupted update
    engine.close()
    from claude_context.config import load_config
    from claude_context.engine import Engine

    fresh = Engine(load_config())
    try:
        report = fresh.update(repo, lock_timeout=0)
        assert report.applied and report.full_scan
        assert_agrees_with_disk(fresh, repo)
        assert len([p for p in files(fresh, repo) if p.startswith("generated_pkg/")]) == n
        hits = fresh.search(repo, "compute_unit_59", mode="keyword").results
        assert hits and hits[0].path == "generated_pkg/unit_059.py"
        hits = fresh.search(repo, "scale reading 123", mode="semantic", limit=20).results
        assert any(h.path.startswith("generated_pkg/") for h in hits)
    finally:
        fresh.close()


def test_watch_cli_prints_one_line_per_update(engine, repo, home):
    engine.index(repo)
    # an index from before an upgrade of the chunker: watch re-chunks it before it watches (the
    # watcher alone would re-chunk only the files it sees change); texts that kept their chunks
    # come from the cache
    from claude_context.chunkers import CHUNKER_VERSION

    meta = engine.resolve(repo)[0].store.meta
    old = json.loads(meta.get_meta("indexed_settings")) | {"chunker": CHUNKER_VERSION - 1}
    meta.set_meta(indexed_settings=json.dumps(old), settings=json.dumps(old))
    assert engine.status(repo).note
    proc = subprocess.Popen(
        cli("watch", str(repo), "--debounce", "0.1"),
        env=dict(os.environ, CLAUDE_CONTEXT_HOME=str(home), COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # a shell that runs the suite in the background ignores SIGINT, and children inherit
        # that: give the watcher the disposition a terminal user's process has
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_for(lambda: _watching(engine, repo, proc.pid), what="watching")
        assert engine.status(repo).note == ""
        assert json.loads(meta.get_meta("indexed_settings"))["chunker"] == CHUNKER_VERSION
        # a file taken away and put back: one line per update (cached vectors: no model load)
        text = (repo / "app" / "slugs.py").read_text()
        (repo / "app" / "slugs.py").unlink()
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "1 deleted (app/slugs.py)" in line and " ms " in line, line
        (repo / "app" / "slugs.py").write_text(text)
        line = proc.stdout.readline()
        assert "1 file changed (app/slugs.py)" in line and "0 embedded" in line, line
        status = run_cli(home, "status", str(repo))
        assert f"watcher: watching (pid {proc.pid})" in status.stdout, status.stdout
        assert "last change applied: never" not in status.stdout
        st = json.loads(run_cli(home, "status", str(repo), "--json").stdout)
        assert st["watcher"] == "watching" and st["last_change_at"]
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:  # say where it is stuck (faulthandler on SIGUSR1)
            proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            proc.kill()
            _, errs = proc.communicate(timeout=10)
            raise AssertionError(f"watch did not stop after Ctrl-C:\n{errs[-6000:]}") from None
        assert code in (0, 130)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
