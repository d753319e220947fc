"""What changed on disk since the index last saw it: one change detection for every run.

A full ``index`` run, watch-mode updates and start-up reconciliation all plan the same way: a
stat-level scan (the whole tree with ``plan_full``, or only the paths a watcher reported with
``plan_paths``) compared with the files table. A file whose size and mtime match its state row is
unchanged; nothing is opened here. ``Codebase`` applies a plan through the indexing pipeline.
"""

from __future__ import annotations

import bisect
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from claude_context.discovery import DiscoveryOptions, Skipped, discover, walk_folder
from claude_context.ignore import IgnoreRules
from claude_context.index.truth.metadata import FileState
from claude_context.records import FileEntry


@dataclass(slots=True)
class ChangePlan:
    """Files to re-read and paths to drop, from comparing stat data with the files table."""

    changed: list[FileEntry] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    checked: int = 0
    full: bool = False
    needs_full: bool = False  # the targeted scan met something only the full walk decides (symlinks)

    @property
    def empty(self) -> bool:
        return not self.changed and not self.deleted


def differs(entry: FileEntry, states: dict[str, FileState]) -> bool:
    s = states.get(entry.path)
    return s is None or s.size != entry.size or s.mtime_ns != entry.mtime_ns


def plan_full(
    root: Path,
    options: DiscoveryOptions,
    states: dict[str, FileState],
    *,
    force: bool = False,
    skipped: list[Skipped] | None = None,
) -> ChangePlan:
    """Stat-walk the whole tree (no file is opened) and diff it with the files table.

    A file without a state row is new, or was staged by a run that stopped before all its vectors
    were in: either way it is (re)chunked, and the cache supplies what was embedded. ``force``:
    every file counts as changed."""
    entries = list(discover(root, options, skipped if skipped is not None else []))
    seen = {e.path for e in entries}
    return ChangePlan(
        changed=[e for e in entries if force or differs(e, states)],
        deleted=[p for p in states if p not in seen],
        checked=len(entries),
        full=True,
    )


def plan_paths(
    root: Path, options: DiscoveryOptions, states: dict[str, FileState], paths: Iterable[str]
) -> ChangePlan:
    """Diff only ``paths`` (relative POSIX paths of files or folders, as a watcher reports them).

    A path that no longer exists drops its file, or every file below it (a deleted or moved-away
    folder); a folder that exists is walked. Mirrors discovery's rules (ignore files, size limit,
    readability); symlinks are left to the full walk (``needs_full``) because discovery's link
    rules depend on the rest of the tree.
    """
    rules = IgnoreRules(root, options)
    plan = ChangePlan()
    root_s = str(root)
    by_prefix: list[str] | None = None
    seen: set[str] = set()
    for rel in sorted({_rel(p) for p in paths} - {""}):
        if rel in seen or rel.startswith("../"):
            continue
        seen.add(rel)
        abs_path = f"{root_s}/{rel}"
        try:
            st = os.lstat(abs_path)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        except OSError:  # unreadable now: discovery would skip it, so it leaves the index
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            try:
                os.stat(abs_path)
            except OSError:  # a broken link (e.g. an editor's lock file): discovery skips it quietly
                st = None
            else:
                plan.needs_full = True
                return plan
        if st is not None and os.path.realpath(abs_path) != os.path.normpath(abs_path):
            plan.needs_full = True  # reached through a linked folder
            return plan
        if st is None or (not stat.S_ISDIR(st.st_mode) and not stat.S_ISREG(st.st_mode)):
            if rel in states:
                plan.deleted.append(rel)
            if by_prefix is None:
                by_prefix = sorted(states)
            plan.deleted.extend(_under(by_prefix, rel))
            continue
        if stat.S_ISDIR(st.st_mode):
            if by_prefix is None:
                by_prefix = sorted(states)
            below = set(_under(by_prefix, rel))
            if rules.is_ignored(rel, True):
                plan.deleted.extend(sorted(below))
                continue
            found = walk_folder(root, rules, options, rel)
            if found is None:  # a symlink below: only the whole walk decides links
                plan.needs_full = True
                return plan
            for entry in found:
                seen.add(entry.path)
                plan.checked += 1
                if differs(entry, states):
                    plan.changed.append(entry)
            plan.deleted.extend(sorted(below - {e.path for e in found}))
            continue
        plan.checked += 1
        entry = _file_entry(rel, abs_path, st, rules, options)
        if entry is None:
            if rel in states:
                plan.deleted.append(rel)
        elif differs(entry, states):
            plan.changed.append(entry)
    plan.deleted = sorted(set(plan.deleted) - {e.path for e in plan.changed})
    return plan


def _rel(path: str) -> str:
    rel = path.replace(os.sep, "/").strip("/")
    while rel.startswith("./"):
        rel = rel[2:]
    return "" if rel == "." else rel


def _under(sorted_paths: list[str], folder: str) -> list[str]:
    prefix = folder + "/"
    i = bisect.bisect_left(sorted_paths, prefix)
    out = []
    while i < len(sorted_paths) and sorted_paths[i].startswith(prefix):
        out.append(sorted_paths[i])
        i += 1
    return out


def _file_entry(
    rel: str, abs_path: str, st: os.stat_result, rules: IgnoreRules, options: DiscoveryOptions
) -> FileEntry | None:
    """The entry discovery would yield for this regular file, or None if it would skip it."""
    if rules.is_ignored(rel, False) or st.st_size > options.max_file_bytes:
        return None
    if not os.access(abs_path, os.R_OK):
        return None
    return FileEntry(rel, Path(abs_path), st.st_size, st.st_mtime_ns)


def relative(root: Path, path: str) -> str:
    p = str(path)
    if os.path.isabs(p):
        root_s = str(root)
        if p == root_s:
            return ""
        if p.startswith(root_s.rstrip(os.sep) + os.sep):
            return _rel(p[len(root_s.rstrip(os.sep)) + 1 :])
        return "../" + p  # outside the root: ignored by the plan
    return _rel(p)
