"""Find the files of a codebase worth indexing, and read one for chunking.

``discover`` is a stat-level walk (no file is opened: it runs on every re-index and startup, so it
must stay fast); content checks (binary, minified, encoding) happen in ``read_source``, when the file
is read anyway. Ignore rules live in :mod:`claude_context.ignore`.

Symlinks: a link whose target is outside the root is never followed (reported). Inside the root,
content is indexed under its real path only; a link is followed (under the link's path) only when its
target is not indexed under its real path (e.g. it lives in an ignored folder). Each real folder is
entered once, so link loops terminate (reported where cut). Broken links are skipped quietly.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import functools
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from claude_context.errors import RefusedRootError
from claude_context.ignore import (
    BUILTIN_IGNORES,
    SECRET,
    SECRET_PATTERNS,
    DiscoveryOptions,
    IgnoreRules,
    is_secret_name,
)
from claude_context.records import FileEntry

__all__ = [
    "BUILTIN_IGNORES",
    "SECRET_PATTERNS",
    "BinaryFileError",
    "DiscoveryOptions",
    "FileReadError",
    "IgnoreRules",
    "MinifiedFileError",
    "Skipped",
    "discover",
    "read_source",
    "refuse_root",
    "walk_folder",
]

# Kernel and device views, not files anyone wrote: never a codebase, never entered by a walk.
PSEUDO_ROOTS = ("/proc", "/sys", "/dev")
PSEUDO_FS_TYPES = frozenset(
    {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs",
     "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "binfmt_misc", "efivarfs"}
)


@functools.cache
def pseudo_devices() -> frozenset[int]:
    """Device numbers of this machine's pseudo filesystems (from /proc/self/mounts; autofs mount
    points are not stat'ed, that would mount them)."""
    mounts: list[str] = list(PSEUDO_ROOTS)
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[2] in PSEUDO_FS_TYPES:
                    mounts.append(parts[1].replace("\\040", " "))
    except OSError:
        pass
    devs = set()
    for m in mounts:
        with contextlib.suppress(OSError):
            devs.add(os.stat(m).st_dev)
    with contextlib.suppress(OSError):  # a /dev that is a plain folder of the root disk
        devs.discard(os.stat("/").st_dev)
    return frozenset(devs)


def refuse_root(root: Path) -> None:
    """Raise RefusedRootError for a folder no user means to index: the filesystem root (every
    mounted disk plus /proc) or a pseudo filesystem such as /proc, /sys or /dev."""
    text = str(root)
    if root == Path(root.anchor):
        raise RefusedRootError(
            f"refusing to index {text}: the filesystem root is not a codebase (it would crawl every "
            "mounted disk and the kernel's /proc); pass the project folder"
        )
    pseudo = next((p for p in PSEUDO_ROOTS if text == p or text.startswith(p + "/")), None)
    try:
        on_pseudo = os.stat(root).st_dev in pseudo_devices()
    except OSError:
        on_pseudo = False
    if pseudo or on_pseudo:
        what = pseudo or "kernel or device state"
        raise RefusedRootError(
            f"refusing to index {text}: it is a pseudo filesystem ({what}), not source files on disk"
        )


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file left out for a reason the user may want to see (not gitignored / node_modules noise)."""

    path: str  # relative, POSIX
    reason: str  # too_large, secret, symlink_outside_root, symlink_loop, symlink_to_indexed (its target
    # is indexed under its own path), pseudo_filesystem, unreadable, binary, minified


class BinaryFileError(Exception):
    """The file's content is not useful source text (binary, or minified/generated)."""

    reason = "binary"


class MinifiedFileError(BinaryFileError):
    """Minified or generated one-line code: huge lines that would make useless chunks."""

    reason = "minified"


class FileReadError(Exception):
    """The file cannot be read: vanished since discovery, permission denied, too large, a folder, ..."""

    def __init__(self, message: str, reason: str = "unreadable"):
        super().__init__(message)
        self.reason = reason  # unreadable, vanished, too_large, not_a_file


# ------------------------------------------------------------------------------------------------- walk


def discover(
    root: Path, options: DiscoveryOptions | None = None, skipped: list[Skipped] | None = None
) -> Iterator[FileEntry]:
    """Yield the indexable files under ``root`` in sorted path order.

    Raises ``FileNotFoundError`` / ``NotADirectoryError`` / ``PermissionError`` right away for a bad
    root; after that it never raises for files or folders that vanish or cannot be read. Files dropped
    for reasons worth reporting are appended to ``skipped``.
    """
    root_path = Path(root).expanduser()
    if not root_path.exists():
        raise FileNotFoundError(f"codebase root does not exist: {root_path}")
    if not root_path.is_dir():
        raise NotADirectoryError(f"codebase root is not a directory: {root_path}")
    root_path = root_path.resolve()
    if not os.access(root_path, os.R_OK | os.X_OK):
        raise PermissionError(f"codebase root is not readable: {root_path}")
    opts = options or DiscoveryOptions()
    rules = IgnoreRules(root_path, opts)
    return _Walk(root_path, rules, opts, skipped if skipped is not None else []).run()


class LinkMet(Exception):
    """A folder walk met a symlink (``walk_folder``): only the whole-tree walk decides links."""


def walk_folder(
    root: Path, rules: IgnoreRules, options: DiscoveryOptions, folder: str
) -> list[FileEntry] | None:
    """The files ``discover`` would yield below ``folder`` (a relative path whose parents are not
    ignored), or None if the folder holds a symlink or cannot be listed as a folder."""
    try:
        return list(_Walk(root, rules, options, []).run(folder, links=False))
    except LinkMet:
        return None
    except OSError:
        return []


def _sort_key(entry: os.DirEntry[str]) -> str:
    """Folders sort as "name/" so the walk's output equals ``sorted()`` of the full paths."""
    try:
        return entry.name + "/" if entry.is_dir() else entry.name
    except OSError:
        return entry.name


def _scandir_sorted(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as it:
        entries = list(it)
    entries.sort(key=_sort_key)
    return entries


class _Walk:
    """One depth-first walk (explicit stack: deep trees must not hit the recursion limit)."""

    def __init__(self, root: Path, rules: IgnoreRules, options: DiscoveryOptions, skipped: list[Skipped]):
        self.root = str(root)
        self.root_prefix = self.root if self.root.endswith(os.sep) else self.root + os.sep
        self.rules = rules
        self.max_bytes = options.max_file_bytes
        self.index_secrets = options.index_secrets
        self.skipped = skipped
        self.visited: set[tuple[int, int]] = set()  # real folders entered (st_dev, st_ino)
        self.linked_files: set[tuple[int, int]] = set()  # files yielded through a link
        self.exclude = {os.path.normpath(d) for d in options.exclude_dirs}
        self.pseudo = pseudo_devices()  # /proc, /sys, ... mounted inside the tree: never entered

    def run(self, start: str = "", links: bool = True) -> Iterator[FileEntry]:
        """Walk the tree (or only the folder ``start``, whose parents are known not ignored).
        ``links=False``: raise ``LinkMet`` at the first symlink instead of deciding it (how a link
        is treated depends on the rest of the tree: only the whole walk can)."""
        top = f"{self.root}{os.sep}{start}" if start else self.root
        root_st = os.stat(top)
        self.visited.add((root_st.st_dev, root_st.st_ino))
        entries = self._list(start, top)
        if entries is None:
            return
        # frame: (folder rel path, real path of that folder, its remaining entries)
        stack: list[tuple[str, str, Iterator[os.DirEntry[str]]]] = [(start, top, iter(entries))]
        classify = self.rules.classify_entry
        while stack:
            parent, real_dir, it = stack[-1]
            entry = next(it, None)
            if entry is None:
                stack.pop()
                continue
            name = entry.name
            rel = f"{parent}/{name}" if parent else name
            try:
                is_link = entry.is_symlink()
                is_dir = not is_link and entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_link:
                if not links:
                    raise LinkMet(rel)
                found = self._link(entry, parent, rel, real_dir)
                if isinstance(found, tuple):
                    stack.append(found)
                elif found is not None:
                    yield found
            elif is_dir:
                if classify(parent, rel, name, True) is not None:
                    continue
                real = f"{real_dir}{os.sep}{name}"
                if real in self.exclude:
                    continue  # the index home inside the codebase: our own data is not source
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key in self.visited:  # e.g. a bind mount of a folder already walked
                    continue
                if st.st_dev in self.pseudo:
                    self.skipped.append(Skipped(rel, "pseudo_filesystem"))
                    continue
                self.visited.add(key)
                children = self._list(rel, entry.path)
                if children:
                    stack.append((rel, real, iter(children)))
            elif entry.is_file(follow_symlinks=False):
                verdict = classify(parent, rel, name, False)
                if verdict is not None:
                    if verdict == SECRET:
                        self.skipped.append(Skipped(rel, "secret"))
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # deleted since the listing
                    continue
                except OSError:
                    self.skipped.append(Skipped(rel, "unreadable"))
                    continue
                file = self._entry(rel, entry.path, st)
                if file is not None:
                    yield file
            # anything else (fifo, socket, device) is not source

    def _list(self, rel: str, path: str) -> list[os.DirEntry[str]] | None:
        try:
            return _scandir_sorted(path)
        except (FileNotFoundError, NotADirectoryError):  # vanished / replaced since listed
            return None
        except OSError:
            self.skipped.append(Skipped(rel or ".", "unreadable"))
            return None

    def _entry(self, rel: str, path: str, st: os.stat_result) -> FileEntry | None:
        if st.st_size > self.max_bytes:
            self.skipped.append(Skipped(rel, "too_large"))
            return None
        if not os.access(path, os.R_OK):
            self.skipped.append(Skipped(rel, "unreadable"))
            return None
        return FileEntry(rel, Path(path), st.st_size, st.st_mtime_ns)

    def _link(
        self, entry: os.DirEntry[str], parent: str, rel: str, real_dir: str
    ) -> FileEntry | tuple[str, str, Iterator[os.DirEntry[str]]] | None:
        """Decide about a symlink: a file to yield, a folder frame to push, or None (skipped)."""
        try:
            st = os.stat(entry.path)  # follows the link
        except FileNotFoundError:  # broken link
            return None
        except OSError as exc:
            reason = "symlink_loop" if exc.errno == errno.ELOOP else "unreadable"
            self.skipped.append(Skipped(rel, reason))
            return None
        is_dir = stat.S_ISDIR(st.st_mode)
        if not is_dir and not stat.S_ISREG(st.st_mode):
            return None
        verdict = self.rules.classify_entry(parent, rel, entry.name, is_dir)
        if verdict is not None:
            if verdict == SECRET:
                self.skipped.append(Skipped(rel, "secret"))
            return None
        target = os.path.realpath(entry.path)
        if target != self.root and not target.startswith(self.root_prefix):
            self.skipped.append(Skipped(rel, "symlink_outside_root"))
            return None
        target_rel = os.path.relpath(target, self.root).replace(os.sep, "/")
        if target_rel == ".":
            target_rel = ""
        key = (st.st_dev, st.st_ino)
        if is_dir:
            if real_dir == target or real_dir.startswith(target + os.sep):  # points at a parent folder
                self.skipped.append(Skipped(rel, "symlink_loop"))
                return None
            if self.rules.classify(target_rel, True) is None:  # walked under its real path anyway
                self.skipped.append(Skipped(rel, "symlink_to_indexed"))
                return None
            if key in self.visited:
                self.skipped.append(Skipped(rel, "symlink_loop"))
                return None
            self.visited.add(key)
            children = self._list(rel, entry.path)
            return (rel, target, iter(children)) if children else None
        if self.rules.classify(target_rel, False) is None:  # indexed under its real path
            self.skipped.append(Skipped(rel, "symlink_to_indexed"))
            return None
        if not self.index_secrets and is_secret_name(os.path.basename(target)):
            self.skipped.append(Skipped(rel, "secret"))
            return None
        if key in self.linked_files:
            return None
        self.linked_files.add(key)
        return self._entry(rel, entry.path, st)


# ------------------------------------------------------------------------------------------------- read

SNIFF_BYTES = 8192
MAX_CONTROL_SHARE = 0.10  # more control bytes than this in the first 8 KiB: binary
MINIFIED_EXTENSIONS = frozenset({".js", ".mjs", ".cjs", ".css", ".json"})
MINIFIED_AVG_LINE = 400
MINIFIED_MAX_LINE = 10_000

# Bytes that do not occur in text: C0 controls except \b \t \n \f \r ESC, plus DEL.
_CONTROL = bytes(b for b in range(32) if b not in (8, 9, 10, 12, 13, 27)) + b"\x7f"

_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF8, "utf-8"),
)


def read_source(abs_path: Path, max_bytes: int) -> str:
    """Read and decode a file for chunking, with "\\n" line endings.

    Raises ``BinaryFileError`` (``MinifiedFileError`` for minified code) when the content is not
    useful text and ``FileReadError`` when the file cannot be read. Invalid UTF-8 never raises: bad
    bytes become U+FFFD so the rest of the file is still searchable.
    """
    path = os.fspath(abs_path)
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise FileReadError("is a directory", "not_a_file")
        if not stat.S_ISREG(st.st_mode):  # opening a fifo would block
            raise FileReadError("not a regular file", "not_a_file")
        if st.st_size > max_bytes:
            raise FileReadError(f"too large ({st.st_size} bytes > {max_bytes})", "too_large")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise FileReadError("file vanished (deleted since discovery)", "vanished") from None
    except IsADirectoryError:
        raise FileReadError("is a directory", "not_a_file") from None
    except PermissionError:
        raise FileReadError("permission denied") from None
    except OSError as exc:
        raise FileReadError(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # grew since the stat
        raise FileReadError(f"too large (> {max_bytes} bytes)", "too_large")
    text = _decode(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if os.path.splitext(path)[1].lower() in MINIFIED_EXTENSIONS:
        _check_minified(text)
    return text


def _decode(data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    sample = data[:SNIFF_BYTES]
    if b"\0" in sample:
        raise BinaryFileError("binary content (NUL byte)")
    if sample:
        control = len(sample) - len(sample.translate(None, _CONTROL))
        if control / len(sample) > MAX_CONTROL_SHARE:
            raise BinaryFileError(f"binary content ({control} control bytes in the first {len(sample)})")
    return data.decode("utf-8", errors="replace")


def _check_minified(text: str) -> None:
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    average = len(text) / max(lines, 1)
    if len(text) > 1024 and average > MINIFIED_AVG_LINE:
        raise MinifiedFileError(f"minified or generated (average line length {average:.0f})")
    if len(text) > MINIFIED_MAX_LINE:
        longest = max(map(len, text.split("\n")))
        if longest > MINIFIED_MAX_LINE:
            raise MinifiedFileError(f"minified or generated (a line of {longest} characters)")
