"""Faults from outside, through the real CLI (issue 17): refused roots, malformed input, and
(below) full disks, read-only homes, damaged files and kills at random points. Each must end in
one sentence and a usable (or self-repairing) index."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "claude_context.cli"]


def cli(home: Path, *args: str, ok: bool = True, **popen) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*CLI, *args],
        env=dict(os.environ, CLAUDE_CONTEXT_HOME=str(home), COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=300,
        **popen,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def one_line_error(proc: subprocess.CompletedProcess, needle: str, code: int = 1) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("index", "/"), "the filesystem root is not a codebase"),
        (("index", "/proc"), "pseudo filesystem"),
        (("index", "/dev"), "pseudo filesystem"),
        (("search", ".", "x", "--path", "\\"), "invalid glob"),
        (("search", ".", "x", "--exclude", "[z-a]"), "invalid glob"),
        (("search", ".", "q" * 20_000), "query is too long"),
    ],
)
def test_refused_roots_and_bad_input_are_one_line(home: Path, args: tuple[str, ...], needle: str) -> None:
    one_line_error(cli(home, *args, ok=False), needle)
    assert not any((home / "codebases").glob("*/index.sqlite"))  # nothing was created


def test_discovery_never_enters_a_pseudo_filesystem(tmp_path: Path) -> None:
    from claude_context.discovery import Skipped, discover, pseudo_devices

    if not pseudo_devices():
        pytest.skip("no pseudo filesystem is mounted here")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("x = 1\n")
    mounted = next(p for p in ("/proc", "/sys") if os.path.isdir(p))
    (repo / "kernel").mkdir()
    try:  # a real mount inside the tree needs root; a symlink must be cut as out-of-root anyway
        subprocess.run(["mount", "--bind", mounted, str(repo / "kernel")], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        (repo / "kernel").rmdir()
        (repo / "kernel").symlink_to(mounted)
    try:
        skipped: list[Skipped] = []
        found = [e.path for e in discover(repo, skipped=skipped)]
        assert found == ["a.py"]
        assert [s.path for s in skipped] == ["kernel"], skipped
    finally:
        if (repo / "kernel").is_mount():
            subprocess.run(["umount", str(repo / "kernel")], check=False)
    shutil.rmtree(repo)


# -- storage faults ------------------------------------------------------------------------------

QUERY, TOP = "parse a semantic version string", "crates/semver/src/lib.rs"


def _limited(size: int):
    """A child whose writes stop at ``size`` bytes per file (EFBIG, like a full disk), not killed."""

    def limit() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, warm_cache: Path) -> tuple[Path, Path]:
    """(repo, home): the fixture repository indexed once through the CLI; tests copy the home."""
    from conftest import POLYGLOT

    base = tmp_path_factory.mktemp("faults")
    repo, home = base / "repo", base / "home"
    shutil.copytree(POLYGLOT, repo, ignore=shutil.ignore_patterns("EXPECTED.json"))
    home.mkdir()
    shutil.copy(warm_cache, home / "embeddings.sqlite")
    cli(home, "index", str(repo), "--quiet")
    return repo, home


def _copy(indexed: tuple[Path, Path], home: Path) -> tuple[Path, Path]:
    """A private copy of the indexed home in ``home``: (repo, its index folder)."""
    repo, template = indexed
    shutil.copytree(template, home, dirs_exist_ok=True)
    (folder,) = (home / "codebases").iterdir()
    return repo, folder


def _top(home: Path, repo: Path, *extra: str) -> str:
    import json

    out = json.loads(cli(home, "search", str(repo), QUERY, "--json", "-n", "1", *extra).stdout)
    return out["results"][0]["path"]


def _status(home: Path, repo: Path) -> dict:
    import json

    return json.loads(cli(home, "status", str(repo), "--json").stdout)


def test_disk_full_during_indexing(home: Path, indexed: tuple[Path, Path], warm_cache: Path) -> None:
    repo = indexed[0]
    shutil.copy(warm_cache, home / "embeddings.sqlite")
    # the fixture's index.sqlite needs ~90 KB: writes stop at 48 KB, as on a full disk
    proc = cli(home, "index", str(repo), "--quiet", ok=False, preexec_fn=_limited(48 * 1024))
    one_line_error(proc, "disk full")
    st = _status(home, repo)
    assert st["status"] == "failed" and "disk full" in st["error"], st
    assert "disk full" in cli(home, "status").stdout  # the human form too
    cli(home, "index", str(repo), "--quiet")  # space is back: the next run finishes the job
    assert _status(home, repo)["status"] == "indexed" and _top(home, repo) == TOP


def _read_only(path: Path, mount: Path):
    """``path`` seen read-only at ``mount`` (a read-only bind mount as root, where chmod does not
    bind; chmod elsewhere); returns an undo function."""
    if os.geteuid() == 0:
        mount.mkdir()
        try:
            subprocess.run(["mount", "--bind", str(path), str(mount)], check=True, capture_output=True)
            subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            subprocess.run(["umount", str(mount)], check=False, capture_output=True)
            pytest.skip("root without mount rights: cannot make a read-only home")
        return lambda: subprocess.run(["umount", str(mount)], check=False)
    shutil.copytree(path, mount)
    modes = [(p, p.stat().st_mode) for p in [mount, *mount.rglob("*")]]
    for p, mode in modes:
        p.chmod(mode & ~0o222)
    return lambda: [p.chmod(mode) for p, mode in modes]


def test_read_only_home_answers_searches(home: Path, indexed: tuple[Path, Path], tmp_path: Path) -> None:
    repo, _ = _copy(indexed, home)
    ro = tmp_path / "ro-home"
    undo = _read_only(home, ro)
    try:
        assert _top(ro, repo, "--mode", "keyword") == TOP
        st = _status(ro, repo)
        assert st["status"] == "indexed" and st["index"]["vectors"] == st["chunks"]  # vectors read too
        assert str(repo) in cli(ro, "list").stdout
        one_line_error(cli(ro, "index", str(repo), ok=False), "read-only")
        one_line_error(cli(ro, "clear", str(repo), ok=False), "read-only")
    finally:
        undo()


def test_damaged_index_sqlite_is_reported_and_rebuilt(home: Path, indexed: tuple[Path, Path]) -> None:
    import json

    repo, folder = _copy(indexed, home)
    db = folder / "index.sqlite"
    with db.open("r+b") as f:  # garbage over its header (the middle: the in-process test below)
        f.write(b"\xde\xad\xbe\xef" * 2048)
    st = _status(home, repo)
    assert st["status"] == "failed" and "damaged" in st["error"], st
    listed = json.loads(cli(home, "list", "--json").stdout)
    assert [(c["root"], c["status"]) for c in listed] == [(str(repo), "failed")]
    one_line_error(cli(home, "search", str(repo), QUERY, ok=False), "damaged")
    report = json.loads(cli(home, "index", str(repo), "--json").stdout)
    assert "damaged" in report["note"] and report["chunks_embedded"] == 0  # vectors from the cache
    assert list(folder.glob("index.sqlite.damaged-*"))
    assert _top(home, repo, "--mode", "keyword") == TOP and _status(home, repo)["status"] == "indexed"
    # clear always works, even on a database that cannot be opened at all
    with db.open("r+b") as f:
        f.write(b"garbage" * 100)
    cli(home, "clear", str(repo))
    assert not folder.exists() and _status(home, repo)["status"] == "not_indexed"


def test_damaged_embedding_cache_is_set_aside(home: Path, indexed: tuple[Path, Path]) -> None:
    repo, _ = _copy(indexed, home)
    cache = home / "embeddings.sqlite"
    with cache.open("r+b") as f:
        f.write(b"garbage" * 100)
    report = cli(home, "index", str(repo), "--quiet")  # was: every command failed until deleted
    assert "Traceback" not in report.stderr and "set aside" in report.stderr
    assert list(home.glob("embeddings.sqlite.damaged-*"))  # kept for a post-mortem, out of the way
    assert _top(home, repo, "--mode", "keyword") == TOP and _status(home, repo)["status"] == "indexed"


def test_corrupting_any_file_of_the_index_is_repaired(engine, repo: Path) -> None:
    """Byte damage in every file the index keeps (one at a time): the next index run repairs it
    and search finds the same top result."""
    engine.index(repo)
    folder = engine.resolve(repo)[0].folder
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != "write.lock"]
    kept = sorted(p for p in files if p.stat().st_size > 0)
    assert {"index.sqlite", "vectors.hnsw"} <= {p.name for p in kept}
    for path in kept:
        engine.forget(repo)  # closed, as after a crash (its -wal and -shm go away)
        if not path.exists():  # a segment an earlier repair replaced
            continue
        data = bytearray(path.read_bytes())
        mid = len(data) // 2 // 4096 * 4096 if len(data) > 8192 else len(data) // 2  # a whole page
        data[mid : mid + 4096] = b"\xff" * min(4096, len(data) - mid)
        path.write_bytes(bytes(data))
        if path.name == "index.sqlite":  # the source of truth: never "indexed" while damaged
            st = engine.status(repo)
            assert st.status == "failed" and "damaged" in st.error, st
        report = engine.index(repo)
        top = engine.search(repo, QUERY, limit=1).results
        assert top and top[0].path == TOP, (path.name, report.note)
        assert engine.status(repo).status == "indexed", path.name


def test_interrupted_update_is_not_indexed(engine, repo: Path) -> None:
    import threading

    from claude_context.errors import IndexCancelled

    (repo / "alias.py").symlink_to(repo / "app" / "slugs.py")  # in root, indexed as slugs.py
    report = engine.index(repo)
    assert {"path": "alias.py", "reason": "symlink_to_indexed"} in report.skipped
    assert report.files_skipped == len(report.skipped)  # the count is the list's length
    for i in range(30):
        (repo / f"added_{i}.py").write_text(f"def added_function_{i}():\n    return {i}\n")
    stop = threading.Event()
    stop.set()  # the watcher is stopping as the update begins
    with pytest.raises(IndexCancelled):
        engine.update(repo, cancel=stop)
    st = engine.status(repo)
    assert st.status == "failed" and "interrupted" in st.error, st
    engine.update(repo)
    assert engine.status(repo).status == "indexed"


def test_kill_9_at_random_points_leaves_an_honest_index(home: Path, tmp_path: Path, warm_cache) -> None:
    import json
    import random
    import signal
    import time

    repo = tmp_path / "killed"
    repo.mkdir()
    for i in range(60):
        body = f"def kill_point_{i}(x):\n    return x * {i}  # random kill {i}\n"
        (repo / f"unit_{i:03d}.py").write_text(body)
    shutil.copy(warm_cache, home / "embeddings.sqlite")
    rng = random.Random(17)
    env = dict(os.environ, CLAUDE_CONTEXT_HOME=str(home))
    for _ in range(2):
        proc = subprocess.Popen([*CLI, "index", str(repo), "--quiet"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(0.5, 3.0))
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        st = _status(home, repo)
        if not finished and st["status"] != "not_indexed":
            assert st["status"] != "indexed" or st["chunks"] >= 60, st  # never "indexed" half-way
            if st["chunks"]:  # what is in is searchable, whatever the moment of death
                cli(home, "search", str(repo), "kill_point_7", "--mode", "keyword")
    report = json.loads(cli(home, "index", str(repo), "--json").stdout)
    assert report["files_total"] == 60
    st = _status(home, repo)
    assert st["status"] == "indexed" and st["chunks"] == 60, st
    hit = json.loads(cli(home, "search", str(repo), "kill_point_42", "--json", "-n", "1").stdout)
    assert hit["results"][0]["path"] == "unit_042.py"
