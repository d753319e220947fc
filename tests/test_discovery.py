"""Discovery: ignore rules, symlinks, unreadable files, and read_source decoding, on real files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from claude_context import discovery
from claude_context.discovery import (
    BinaryFileError,
    DiscoveryOptions,
    FileReadError,
    IgnoreRules,
    MinifiedFileError,
    Skipped,
    discover,
    read_source,
)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def make(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def walk(root: Path, **options: object) -> tuple[list[str], list[Skipped]]:
    skipped: list[Skipped] = []
    paths = [e.path for e in discover(root, DiscoveryOptions(**options), skipped)]  # type: ignore[arg-type]
    return paths, skipped


def reasons(skipped: list[Skipped]) -> dict[str, str]:
    return {s.path: s.reason for s in skipped}


# ------------------------------------------------------------------------------------------- ignore files

# A tree exercising git's semantics; every name avoids the built-in and secret rules.
GIT_TREE: dict[str, str | bytes] = {
    ".gitignore": "\n".join(
        [
            "# comment",
            "*.log",
            "!keep.log",
            "/anchored.txt",
            "docs/*.md",
            "!docs/README.md",
            "logs/",
            "!logs/important.log",  # cannot re-include: its folder is excluded
            "**/deep/*.tmp",
            "a/**/z.txt",
            "cache/",  # folders only: the file "cache" stays
            "file[0-9].txt",
            "!file5.txt",
            "?.q",
            "\\#hash.txt",
            "trailing.txt   ",
            "",
        ]
    ),
    "keep.log": "k",
    "drop.log": "d",
    "anchored.txt": "x",
    "sub/anchored.txt": "kept: anchored pattern only matches at the root",
    "docs/guide.md": "x",
    "docs/README.md": "kept",
    "docs/nested/guide.md": "kept: docs/*.md does not cross folders",
    "logs/important.log": "x",
    "logs/other.txt": "x",
    "x/deep/a.tmp": "x",
    "x/deep/a.txt": "kept",
    "a/z.txt": "x",
    "a/b/c/z.txt": "x",
    "a/b/y.txt": "kept",
    "cache": "kept: a file",
    "other/cache/data.txt": "x",
    "file1.txt": "x",
    "file5.txt": "kept",
    "fileA.txt": "kept",
    "a.q": "x",
    "ab.q": "kept",
    "#hash.txt": "x",
    "trailing.txt": "x",
    "pkg/.gitignore": "/local.txt\n!*.log\ngen/\n",
    "pkg/local.txt": "x",
    "pkg/sub/local.txt": "kept: /local.txt is anchored to pkg/",
    "pkg/sub/x.log": "kept: the deeper .gitignore re-includes *.log",
    "pkg/gen/a.py": "x",
    "local.txt": "kept: pkg's rule does not apply above pkg",
    # whitelist idiom: everything ignored except folders and .py files
    "wl/.gitignore": "*\n!*/\n!*.py\n",
    "wl/x.py": "kept",
    "wl/x.txt": "x",
    "wl/d/y.py": "kept",
    "wl/d/y.txt": "x",
    "main.py": "kept",
}


def test_gitignore_semantics(tmp_path: Path) -> None:
    root = make(tmp_path / "repo", GIT_TREE)
    paths, skipped = walk(root)
    assert paths == [
        ".gitignore",
        "a/b/y.txt",
        "ab.q",
        "cache",
        "docs/README.md",
        "docs/nested/guide.md",
        "file5.txt",
        "fileA.txt",
        "keep.log",
        "local.txt",
        "main.py",
        "pkg/.gitignore",
        "pkg/sub/local.txt",
        "pkg/sub/x.log",
        "sub/anchored.txt",
        "wl/d/y.py",
        "wl/x.py",
        "x/deep/a.txt",
    ]
    assert skipped == []  # gitignored files are dropped silently


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_matches_git_itself(tmp_path: Path) -> None:
    """git is the reference: our walk must list exactly what `git ls-files --others` lists."""
    root = make(tmp_path / "repo", GIT_TREE)
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),
    }
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env)
    (root / ".git" / "info" / "exclude").write_text("ab.q\n")
    out = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "-z"],
        cwd=root,
        check=True,
        env=env,
        capture_output=True,
    ).stdout.decode()
    git_paths = sorted(p for p in out.split("\0") if p)
    paths, _ = walk(root)
    assert "ab.q" not in paths
    assert paths == git_paths


def test_git_info_exclude(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.py": "", "b.py": "", "sub/c.py": "", ".git/info/exclude": "b.py\n/sub/\n"})
    assert walk(root)[0] == ["a.py"]


def test_gitignore_above_root_applies_inside_a_work_tree(tmp_path: Path) -> None:
    """Indexing a sub-folder of a repository still honours the repository's .gitignore."""
    make(tmp_path, {".git/HEAD": "", ".gitignore": "*.gen.py\nproj/skip/\n", ".git/info/exclude": "x.py\n"})
    root = make(tmp_path / "proj", {"a.py": "", "a.gen.py": "", "skip/b.py": "", "x.py": "", "y/x.py": ""})
    assert walk(root)[0] == ["a.py"]


def test_contextignore_and_extra_ignore(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            ".gitignore": "generated/\n",
            ".contextignore": "fixtures/\n!generated/\n",
            "src/a.py": "",
            "src/b_test.py": "",
            "fixtures/f.json": "{}",
            "generated/api.py": "",
            "dist/bundle.py": "",
        },
    )
    paths, _ = walk(root, extra_ignore=["*_test.py", "!dist/"])
    # .contextignore drops fixtures/ and re-includes the gitignored generated/; extra_ignore
    # drops tests and can even re-include a built-in folder (dist/).
    assert paths == [".contextignore", ".gitignore", "dist/bundle.py", "generated/api.py", "src/a.py"]
    assert walk(root)[0] == [".contextignore", ".gitignore", "generated/api.py", "src/a.py", "src/b_test.py"]


def test_gitignore_negation_cannot_resurrect_builtins(tmp_path: Path) -> None:
    root = make(tmp_path, {".gitignore": "*\n!*/\n!*.py\n!*.js\n", "node_modules/x/i.js": "", "a.py": ""})
    assert walk(root)[0] == ["a.py"]


# --------------------------------------------------------------------------------------------- built-ins


def test_builtin_ignores(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            "src/app.py": "",
            "node_modules/lib/index.js": "",
            "web/node_modules/x.js": "",
            ".venv/lib/site.py": "",
            "env/pyvenv.cfg": "home = /usr",
            "env/lib/mod.py": "",
            "env2/config.py": "kept: a folder named like a venv but without pyvenv.cfg",
            "src/__pycache__/app.cpython-311.pyc": b"\0",
            ".git/config": "",
            ".mypy_cache/x.json": "",
            "dist/out.js": "",
            "pkg.egg-info/PKG-INFO": "",
            ".vscode/settings.json": "",
            "vendor/lib.go": "kept",
            ".github/workflows/ci.yml": "kept",
            "package-lock.json": "{}",
            "yarn.lock": "",
            "Cargo.lock": "",
            "go.sum": "",
            "poetry.lock": "",
            "app.min.js": "",
            "style.min.css": "",
            "main.chunk.js": "",
            "vendor-bundle.js": "",
            "app.js.map": "{}",
            "app.js": "kept",
            "logo.png": b"\x89PNG",
            "LOGO.PNG": b"\x89PNG",
            "font.woff2": b"",
            "lib.so": b"",
            "model.safetensors": b"",
            "weights.npy": b"",
            "doc.pdf": b"",
            "data.sqlite": b"",
            "archive.tar.gz": b"",
            "Makefile": "kept",
        },
    )
    paths, skipped = walk(root)
    assert paths == [
        ".github/workflows/ci.yml",
        "Makefile",
        "app.js",
        "env2/config.py",
        "src/app.py",
        "vendor/lib.go",
    ]
    assert skipped == []


def test_extra_extensions_override_builtin_file_rules(tmp_path: Path) -> None:
    root = make(tmp_path, {"app.js.map": "{}", "icon.svg": "<svg/>", "logo.png": b"", "yarn.lock": ""})
    assert walk(root, extra_extensions=[".map", "svg"])[0] == ["app.js.map", "icon.svg"]


# ------------------------------------------------------------------------------------- size and secrets


def test_too_large_is_reported(tmp_path: Path) -> None:
    root = make(tmp_path, {"small.py": "x = 1\n", "big.py": "x" * 200, ".gitignore": "huge.txt\n"})
    (root / "huge.txt").write_text("x" * 500)
    paths, skipped = walk(root, max_file_bytes=100)
    assert paths == [".gitignore", "small.py"]
    assert skipped == [Skipped("big.py", "too_large")]  # gitignored huge.txt is not reported


SECRET_FILES = {
    ".env": "TOKEN=1",
    ".env.local": "TOKEN=1",
    "config/.env.production": "TOKEN=1",
    "id_rsa": "key",
    "certs/server.pem": "key",
    "certs/server.key": "key",
    ".npmrc": "//registry/:_authToken=x",
    "credentials.json": "{}",
}


def test_secrets_skipped_and_reported_by_default(tmp_path: Path) -> None:
    root = make(tmp_path, {**SECRET_FILES, ".env.example": "TOKEN=", "app.py": ""})
    paths, skipped = walk(root)
    assert paths == [".env.example", "app.py"]
    assert reasons(skipped) == dict.fromkeys(SECRET_FILES, "secret")


def test_secrets_indexed_with_index_secrets(tmp_path: Path) -> None:
    root = make(tmp_path, {**SECRET_FILES, "app.py": ""})
    paths, skipped = walk(root, index_secrets=True)
    assert paths == sorted([*SECRET_FILES, "app.py"])
    assert skipped == []


def test_gitignored_secret_is_silent(tmp_path: Path) -> None:
    root = make(tmp_path, {".gitignore": ".env\n", ".env": "TOKEN=1"})
    assert walk(root) == ([".gitignore"], [])


# ---------------------------------------------------------------------------------------------- symlinks


def test_symlink_outside_root_not_followed(tmp_path: Path) -> None:
    outside = make(tmp_path / "outside", {"secret.py": "", "d/x.py": ""})
    root = make(tmp_path / "root", {"a.py": ""})
    (root / "out.py").symlink_to(outside / "secret.py")
    (root / "outdir").symlink_to(outside / "d", target_is_directory=True)
    paths, skipped = walk(root)
    assert paths == ["a.py"]
    assert reasons(skipped) == {"out.py": "symlink_outside_root", "outdir": "symlink_outside_root"}


def test_symlink_loop_terminates_and_is_reported(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"a/x.py": ""})
    (root / "a" / "up").symlink_to(root, target_is_directory=True)
    (root / "a" / "self").symlink_to(root / "a")
    (root / "knot").symlink_to(root / "knot")  # resolving it fails with ELOOP
    paths, skipped = walk(root)
    assert paths == ["a/x.py"]
    assert reasons(skipped) == {"a/up": "symlink_loop", "a/self": "symlink_loop", "knot": "symlink_loop"}


def test_symlinks_inside_root_index_each_file_once(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"real.py": "", "pkg/mod.py": ""})
    (root / "alias.py").symlink_to(root / "real.py")
    (root / "another.py").symlink_to("real.py")  # relative target
    (root / "pkg_link").symlink_to(root / "pkg", target_is_directory=True)
    (root / "broken.py").symlink_to(root / "missing.py")
    paths, skipped = walk(root)
    assert paths == ["pkg/mod.py", "real.py"]
    # not indexed twice, but listed with the reason (a broken link is not a file: quiet)
    assert reasons(skipped) == dict.fromkeys(["alias.py", "another.py", "pkg_link"], "symlink_to_indexed")


def test_symlink_into_ignored_folder_is_followed_once(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"build/gen/api.py": "", "node_modules/lib/index.js": "", ".env": "X=1"})
    (root / "api").symlink_to(root / "build" / "gen", target_is_directory=True)
    (root / "api2").symlink_to(root / "build" / "gen", target_is_directory=True)
    (root / "lib.js").symlink_to(root / "node_modules" / "lib" / "index.js")
    (root / "settings.txt").symlink_to(root / ".env")  # a secret behind an innocent name
    paths, skipped = walk(root)
    assert paths == ["api/api.py", "lib.js"]
    assert reasons(skipped) == {".env": "secret", "api2": "symlink_loop", "settings.txt": "secret"}


# ---------------------------------------------------------------------------------------------- unreadable


@pytest.mark.skipif(IS_ROOT, reason="running as root: chmod does not deny reads (see the simulated test)")
def test_unreadable_file_and_folder_real_permissions(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"ok.py": "", "locked.py": "", "closed/x.py": ""})
    (root / "locked.py").chmod(0)
    (root / "closed").chmod(0)
    try:
        paths, skipped = walk(root)
        with pytest.raises(FileReadError, match="permission"):
            read_source(root / "locked.py", 1000)
    finally:
        (root / "closed").chmod(0o755)
        (root / "locked.py").chmod(0o644)
    assert paths == ["ok.py"]
    assert reasons(skipped) == {"closed": "unreadable", "locked.py": "unreadable"}


def test_unreadable_file_and_folder_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same as above, but works as root too: the OS calls report "permission denied"."""
    root = make(tmp_path / "root", {"ok.py": "", "locked.py": "", "closed/x.py": ""})
    real_access, real_scandir = os.access, discovery._scandir_sorted

    def access(path: str, mode: int, **kw: object) -> bool:
        return not str(path).endswith("locked.py") and real_access(path, mode, **kw)  # type: ignore[arg-type]

    def scandir_sorted(path: str) -> list[os.DirEntry[str]]:
        if path.endswith("closed"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(discovery.os, "access", access)
    monkeypatch.setattr(discovery, "_scandir_sorted", scandir_sorted)
    paths, skipped = walk(root)
    assert paths == ["ok.py"]
    assert reasons(skipped) == {"closed": "unreadable", "locked.py": "unreadable"}


def test_file_deleted_during_walk_is_skipped_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path, {"a.py": "", "gone.py": "", "d/b.py": ""})
    real = discovery._scandir_sorted

    def list_then_delete(path: str) -> list[os.DirEntry[str]]:
        entries = real(path)
        (root / "gone.py").unlink(missing_ok=True)
        shutil.rmtree(root / "d", ignore_errors=True)
        return entries

    monkeypatch.setattr(discovery, "_scandir_sorted", list_then_delete)
    assert walk(root) == (["a.py"], [])


def test_file_deleted_before_read_source(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.py": "x = 1\n"})
    (entry,) = discover(root)
    entry.abs_path.unlink()
    with pytest.raises(FileReadError, match="vanished") as info:
        read_source(entry.abs_path, 1000)
    assert info.value.reason == "vanished"


# -------------------------------------------------------------------------------------------------- root


def test_missing_root_raises_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover(tmp_path / "nope")  # raised on the call, not on first iteration
    (tmp_path / "file.py").write_text("")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        discover(tmp_path / "file.py")


def test_output_is_sorted_and_stat_only(tmp_path: Path) -> None:
    root = make(tmp_path, {"b.py": "bb", "a/z.py": "", "a.py": "a", "a-b/c.py": "", "A.py": ""})
    entries = list(discover(root))
    assert [e.path for e in entries] == sorted(e.path for e in entries)
    assert [e.path for e in entries] == ["A.py", "a-b/c.py", "a.py", "a/z.py", "b.py"]
    b = next(e for e in entries if e.path == "b.py")
    assert b.abs_path == (root / "b.py").resolve()
    assert b.size == 2
    assert b.mtime_ns == (root / "b.py").stat().st_mtime_ns


# ------------------------------------------------------------------------------------------- IgnoreRules


def test_is_ignored_agrees_with_discover(tmp_path: Path) -> None:
    root = make(
        tmp_path / "repo",
        {
            **GIT_TREE,
            **SECRET_FILES,
            ".contextignore": "main.py\n",
            "node_modules/x/y.js": "",
            "env/pyvenv.cfg": "",
            "env/lib/a.py": "",
            "yarn.lock": "",
            ".github/workflows/ci.yml": "",
        },
    )
    rules = IgnoreRules(root, DiscoveryOptions(extra_ignore=["sub/"]))
    found = {e.path for e in discover(root, DiscoveryOptions(extra_ignore=["sub/"]))}
    all_files = []
    for folder, _dirs, files in os.walk(root):
        rel_dir = Path(folder).relative_to(root).as_posix()
        all_files += [f if rel_dir == "." else f"{rel_dir}/{f}" for f in files]
    assert len(all_files) >= 45
    for rel in all_files:
        assert rules.is_ignored(rel, is_dir=False) == (rel not in found), rel
    assert rules.is_ignored("node_modules", is_dir=True)
    assert rules.is_ignored("env", is_dir=True)
    assert rules.is_ignored("pkg/gen", is_dir=True)
    assert not rules.is_ignored("pkg", is_dir=True)
    assert rules.is_ignored(str(root / "logs" / "new.txt"), is_dir=False)  # absolute paths work too
    assert rules.classify(".env", is_dir=False) == "secret"


def test_invalidate_rereads_changed_gitignore(tmp_path: Path) -> None:
    root = make(tmp_path, {"pkg/a.py": "", "pkg/b.txt": ""})
    rules = IgnoreRules(root, DiscoveryOptions())
    assert not rules.is_ignored("pkg/b.txt", is_dir=False)
    (root / "pkg" / ".gitignore").write_text("*.txt\n")
    assert not rules.is_ignored("pkg/b.txt", is_dir=False)  # cached until told
    rules.invalidate("pkg")
    assert rules.is_ignored("pkg/b.txt", is_dir=False)
    (root / ".contextignore").write_text("pkg/\n")
    rules.invalidate("")
    assert rules.is_ignored("pkg/a.py", is_dir=False)


# ----------------------------------------------------------------------------------------- read_source


def test_read_source_binary_by_content(tmp_path: Path) -> None:
    make(tmp_path, {"blob.dat": b"abc\0def", "ctrl.txt": bytes(range(1, 32)) * 10, "ok.txt": "tab\there\n"})
    with pytest.raises(BinaryFileError, match="NUL"):
        read_source(tmp_path / "blob.dat", 1000)
    with pytest.raises(BinaryFileError, match="control"):
        read_source(tmp_path / "ctrl.txt", 1000)
    assert read_source(tmp_path / "ok.txt", 1000) == "tab\there\n"


def test_read_source_minified(tmp_path: Path) -> None:
    one_line = "var a=1;" * 2000  # 16,000 characters on one line
    make(
        tmp_path,
        {
            "app.js": one_line,
            "wide.css": ("a{color:red}" * 50 + "\n") * 10,  # average line 600
            "data.json": '{"k": 1}\n' * 5 + '"' + "x" * 12_000 + '"\n',
            "notes.md": ("word " * 200 + "\n") * 10,  # long prose lines are fine outside code
            "small.json": '{"a": "' + "x" * 500 + '"}',
        },
    )
    for name in ("app.js", "wide.css", "data.json"):
        with pytest.raises(MinifiedFileError, match="minified"):
            read_source(tmp_path / name, 10**6)
    assert read_source(tmp_path / "notes.md", 10**6).startswith("word")
    assert read_source(tmp_path / "small.json", 10**6).startswith('{"a"')


def test_read_source_decoding(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "bad.py": b"ok = 1\nname = '\xff\xfe caf\xe9'\nend = 2\n",
            "bom.py": b"\xef\xbb\xbfx = 1\n",
            "crlf.py": b"a = 1\r\nb = 2\r\nc = 3\rd = 4\n",
            "u16le.txt": "h\u00e9llo\r\nw\n".encode("utf-16"),
            "u16be.txt": b"\xfe\xff" + "z\u00fc\n".encode("utf-16-be"),
        },
    )
    bad = read_source(tmp_path / "bad.py", 1000)
    assert bad.startswith("ok = 1\n") and bad.endswith("end = 2\n")
    assert "\ufffd" in bad
    assert read_source(tmp_path / "bom.py", 1000) == "x = 1\n"
    assert read_source(tmp_path / "crlf.py", 1000) == "a = 1\nb = 2\nc = 3\nd = 4\n"
    assert read_source(tmp_path / "u16le.txt", 1000) == "h\u00e9llo\nw\n"
    assert read_source(tmp_path / "u16be.txt", 1000) == "z\u00fc\n"


def test_read_source_errors(tmp_path: Path) -> None:
    make(tmp_path, {"big.py": "x" * 200, "dir/a.py": ""})
    with pytest.raises(FileReadError, match="too large") as info:
        read_source(tmp_path / "big.py", 100)
    assert info.value.reason == "too_large"
    with pytest.raises(FileReadError, match="directory"):
        read_source(tmp_path / "dir", 100)
    with pytest.raises(FileReadError, match="vanished"):
        read_source(tmp_path / "missing.py", 100)
