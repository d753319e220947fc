"""Reading and chunking files for the indexing pipeline, and the references pass after staging.

A bulk run (many changed files) chunks in worker processes (``spawn``: a process that runs model
threads is never forked) and leaves each file's identifier uses (``chunkers/refs.py``) out: their
extraction is about half the workers' time, and storing them a third of staging's, while keyword
search needs neither. Once the whole tree is keyword-searchable, ``RefsPass`` has the same workers
extract them (each file is read again and checked against the hash it was chunked with) and
hands them to the pipeline's filler, which stores them with the state rows of the files they
complete. Until then such a file has no state row, so a crash leaves it to be re-chunked.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from claude_context.chunkers import chunk_file, detect_language
from claude_context.chunkers.refs import LANGUAGES as REF_LANGUAGES
from claude_context.chunkers.refs import extract_refs
from claude_context.discovery import BinaryFileError, FileReadError, read_source
from claude_context.index.keyword.tokens import token_texts
from claude_context.index.truth.metadata import FileState
from claude_context.index.truth.store import CodebaseStore, FileUpdate
from claude_context.records import FileEntry, Ref, sha
from claude_context.settings import ChunkSettings

log = logging.getLogger(__name__)

FILES_PER_TASK = 16  # files per worker task (amortises inter-process traffic)
REFS_BATCH_FILES = 64  # files whose references the filler stores in one transaction


def prepare_file(
    entry: FileEntry,
    settings: ChunkSettings,
    old: FileState | None,
    force: bool,
    max_file_bytes: int,
    refs: bool = True,
    tokens: bool = False,
) -> FileUpdate | None:
    """Read and chunk one file. None if it vanished since discovery. ``refs=False`` leaves the
    file's references to ``file_refs`` later (``refs_pending``); ``tokens`` computes the keyword
    index's token texts here (in a worker process: the staging thread is the bottleneck)."""
    try:
        text = read_source(entry.abs_path, max_file_bytes)
    except BinaryFileError as exc:
        return FileUpdate(FileState(entry.path, entry.size, entry.mtime_ns, "", "skipped", _reason(exc)))
    except FileReadError as exc:
        if not entry.abs_path.exists():
            return None
        return FileUpdate(FileState(entry.path, entry.size, entry.mtime_ns, "", "skipped", str(exc)))
    digest = sha(text)
    language = detect_language(entry.path) or "text"
    if old is not None and old.status == "ok" and old.hash == digest and not force:
        # content unchanged (e.g. touched): only the stat data moves, nothing is re-chunked
        state = FileState(entry.path, entry.size, entry.mtime_ns, digest, "ok", "", language, old.chunks)
        return FileUpdate(state, content_changed=False)
    chunks = chunk_file(
        entry.path,
        text,
        max_chars=settings.max_chunk_chars,
        module_chars=settings.module_chunk_chars or settings.max_chunk_chars,
        splitter=settings.splitter,
    )
    keys = [sha(c.embed_text()) for c in chunks]
    wants_refs = bool(chunks) and language in REF_LANGUAGES
    return FileUpdate(
        FileState(entry.path, entry.size, entry.mtime_ns, digest, "ok", "", language, len(chunks)),
        chunks,
        keys,
        refs=extract_refs(language, text) if wants_refs and refs else [],
        refs_pending=wants_refs and not refs,
        tokens=[("code", *token_texts(c.path, c.symbol, c.content, c.context)) for c in chunks]
        if tokens
        else [],
    )


def file_refs(entry: FileEntry, digest: str, language: str, max_file_bytes: int) -> list[Ref] | None:
    """The references of a file staged without them; None if its content is no longer what was
    chunked (it then gets no state row, so the next run re-chunks it)."""
    try:
        text = read_source(entry.abs_path, max_file_bytes)
    except (BinaryFileError, FileReadError):
        return None
    return extract_refs(language, text) if sha(text) == digest else None


def _reason(exc: Exception) -> str:
    text = str(exc).lower()
    return "minified" if "minified" in text else "binary"


def prepare_task(
    items: list[tuple[FileEntry, FileState | None]], settings: ChunkSettings, force: bool, max_file_bytes: int
) -> list[FileUpdate | None]:
    """Worker-process entry point: ``prepare_file`` over a few files, references left for later."""
    return [
        prepare_file(e, settings, old, force, max_file_bytes, refs=False, tokens=True) for e, old in items
    ]


def _refs_task(items: list[tuple[FileEntry, str, str]], max_file_bytes: int) -> list[list[Ref] | None]:
    """Worker-process entry point: ``file_refs`` over a few files."""
    return [file_refs(e, digest, language, max_file_bytes) for e, digest, language in items]


def tasks(items: list, size: int = FILES_PER_TASK) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def worker_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_leave_with_parent,
        initargs=(os.getpid(),),
    )


def _leave_with_parent(parent: int) -> None:
    """Worker start-up: exit once the indexer is gone. A killed indexer (``kill -9``, a crash)
    never closes the task queue, and each worker holds its write end too, so it would wait on it
    forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="cc-parent-watch", daemon=True).start()


def in_workers(
    pool: ProcessPoolExecutor,
    fn: Callable,
    work: list[list],
    args: tuple,
    halt: Callable[[], None],
    workers: int,
) -> Iterator[tuple[list, list]]:
    """(task, ``fn(task, *args)``) for each task, in order, computed in ``pool`` with a bounded
    number of tasks in flight; ``halt`` raises to stop early."""
    inflight: collections.deque[tuple[list, Future]] = collections.deque()
    pending = iter(work)
    try:
        for task in pending:
            inflight.append((task, pool.submit(fn, task, *args)))
            if len(inflight) >= 4 * workers:
                break
        while inflight:
            halt()
            task, fut = inflight.popleft()
            results = fut.result()
            nxt = next(pending, None)
            if nxt is not None:
                inflight.append((nxt, pool.submit(fn, nxt, *args)))
            yield task, results
    finally:
        for _, fut in inflight:
            fut.cancel()


@dataclass(slots=True)
class RefsBatch:
    """References extracted after staging, for the filler to store: (path, refs), refs None if
    the file changed since it was chunked."""

    items: list[tuple[str, list[Ref] | None]]


class FileWork:
    """The file-level work of ``IndexPipeline`` (a mixin, for its size): chunking in worker
    processes or in this thread, the references pass, and when a file is complete."""

    settings: ChunkSettings
    force: bool
    max_file_bytes: int
    chunk_workers: int
    store: CodebaseStore
    counters: Any
    _lock: threading.Lock
    _outstanding: dict[str, list]
    _halt: Callable[[], None]
    _hand_over: Callable[[object], None]

    def _prepared(
        self, changed: Sequence[FileEntry], states: dict[str, FileState], pool: ProcessPoolExecutor | None
    ) -> Iterator[tuple[FileEntry, FileUpdate | None]]:
        """(entry, update) in discovery order, from worker processes (``pool``) when that pays off."""

        def here(task: list[tuple[FileEntry, FileState | None]]) -> Iterator[FileUpdate | None]:
            for entry, old in task:
                self._halt()
                yield prepare_file(entry, self.settings, old, self.force, self.max_file_bytes)

        work = tasks([(e, states.get(e.path)) for e in changed])
        for task, results in self._each_task(pool, prepare_task, work, self._task_args(), here, "chunk"):
            for (entry, _), update in zip(task, results, strict=True):
                yield entry, update

    def _task_args(self) -> tuple[ChunkSettings, bool, int]:
        return self.settings, self.force, self.max_file_bytes

    def _each_task(
        self,
        pool: ProcessPoolExecutor | None,
        fn: Callable,
        work: list[list],
        args: tuple,
        here: Callable[[list], Iterable],
        what: str,
    ) -> Iterator[tuple[list, Iterable]]:
        """(task, results) in order: ``fn(task, *args)`` in ``pool``'s workers, or ``here(task)`` in
        this thread (lazily, item by item) when there is no pool or it broke, from the first task
        it did not finish."""
        done = 0
        if pool is not None:
            try:
                for task, results in in_workers(pool, fn, work, args, self._halt, self.chunk_workers):
                    done += 1
                    yield task, results
                return
            except (OSError, RuntimeError) as exc:  # e.g. a broken pool: finish in this process
                log.warning("%s worker failed (%s): continuing in-process", what, exc)
        for task in work[done:]:
            self._halt()
            yield task, here(task)

    def _refs_pass(
        self, pool: ProcessPoolExecutor | None, deferred: list[tuple[FileEntry, str, str]]
    ) -> None:
        """References of the files the workers staged without them, in ``pool`` (in this thread
        if it broke), handed to the filler in batches."""
        args = (self.max_file_bytes,)
        out: list[tuple[str, list[Ref] | None]] = []
        for task, results in self._each_task(
            pool, _refs_task, tasks(deferred), args, lambda task: _refs_task(task, *args), "reference"
        ):
            out += [(e.path, r) for (e, _, _), r in zip(task, results, strict=True)]
            if len(out) >= REFS_BATCH_FILES:
                self._hand_over(RefsBatch(out))
                out = []
        if out:
            self._hand_over(RefsBatch(out))

    def _settle(self, paths: Iterable[str], spoiled: Collection[str] = ()) -> tuple[list[FileState], int]:
        """One awaited piece (a vector, or the references) of each of ``paths`` is in: the state
        rows of the files now complete, and how many completed. A ``spoiled`` file changed after
        it was chunked: it completes without a state row, so the next run re-chunks it. One thread
        (the filler) calls this, each time just before it writes those pieces and rows in one
        transaction, so a state row never lands before the file's last piece."""
        files: list[FileState] = []
        completed = 0
        with self._lock:
            for path in paths:
                entry = self._outstanding.get(path)
                if entry is None:
                    continue
                if path in spoiled:
                    entry[1] = None
                entry[0] -= 1
                if entry[0] == 0:
                    del self._outstanding[path]
                    completed += 1
                    if entry[1] is not None:
                        files.append(entry[1])
        return files, completed

    def _store_refs(self, batch: RefsBatch) -> None:
        spoiled = {path for path, refs in batch.items if refs is None}
        files, completed = self._settle((path for path, _ in batch.items), spoiled)
        self.store.add_refs([(path, refs) for path, refs in batch.items if refs is not None], files)
        with self._lock:
            self.counters.files_done += completed


def pool_for(bulk: bool, workers: int) -> contextlib.AbstractContextManager[ProcessPoolExecutor | None]:
    """A worker pool for a bulk run, else nothing (fewer files are chunked in the calling thread)."""
    return worker_pool(workers) if bulk else contextlib.nullcontext()
