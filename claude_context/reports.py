"""The records the engine returns and both faces (CLI, MCP) print: progress, run reports, status.

Plain dataclasses; ``to_dict`` is the stable JSON of ``--json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass(slots=True)
class IndexProgress:
    phase: str  # scanning | indexing (chunking ahead) | embedding (vectors fill in) | saving | done
    files_done: int = 0  # files fully indexed: keywords and vectors
    files_total: int = 0
    chunks_done: int = 0  # chunks with their vectors
    chunks_embedded: int = 0  # of which the model ran on (cache misses)
    elapsed_s: float = 0.0
    files_staged: int = 0  # files keyword-searchable already (their vectors may be pending)
    chunks_staged: int = 0
    chunks_pending: int = 0  # staged chunks still waiting for the model
    rate: float = 0.0  # recent chunks/s (vectors filled), what the ETA is based on
    eta_s: float | None = None  # seconds until every chunk has its vector (None: not known yet)

    @property
    def percent(self) -> float:
        if self.phase == "done":
            return 100.0
        return round(100.0 * self.files_done / self.files_total, 1) if self.files_total else 0.0

    @property
    def chunks_per_s(self) -> float:
        return round(self.chunks_done / self.elapsed_s, 1) if self.elapsed_s > 0 else 0.0


ProgressFn = Callable[[IndexProgress], None]


@dataclass(slots=True)
class IndexReport:
    root: str
    files_total: int = 0  # files indexed after this run
    files_changed: int = 0  # files (re)chunked in this run
    files_deleted: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    chunks_total: int = 0
    chunks_written: int = 0
    chunks_embedded: int = 0  # chunks the model actually ran on (cache misses)
    seconds: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)
    model_id: str = ""  # model|backend[|quantization] the vectors came from
    model_seconds: float = 0.0  # time spent inside the model (load excluded)
    note: str = ""  # something the user should know (e.g. a backend switch re-embedded everything)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class CodebaseStatus:
    root: str
    status: str  # not_indexed | indexing | indexed | failed
    files: int = 0
    chunks: int = 0
    skipped_files: int = 0
    percent: float = 0.0
    files_done: int = 0
    files_total: int = 0
    chunks_done: int = 0
    chunks_per_s: float = 0.0
    started_at: float | None = None
    last_indexed_at: float | None = None
    error: str = ""
    model: str = ""
    index: dict[str, object] = field(default_factory=dict)
    size_bytes: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    backend: str = ""  # embedding backend of the index (torch, onnx, onnx-int8)
    chunks_pending: int = 0  # chunks keyword-searchable but not yet embedded
    semantic_coverage: float = 1.0  # share of chunks that have their vector
    eta_s: float | None = None  # while indexing: seconds until every chunk has its vector
    # freshness (claude_context/watcher): the live watcher of any process, and the last change
    watcher: str = "off"  # off | starting | watching | polling | error
    watcher_message: str = ""
    watcher_pid: int | None = None
    last_change_at: float | None = None  # when an update or index run last changed the index
    note: str = ""  # what the next index run would change (chunked by an older chunker)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class UpdateReport:
    """What one ``Engine.update`` (``Codebase.apply_changes``) did (a watcher prints a line of it)."""

    root: str
    full_scan: bool = False  # the whole tree was stat-walked (else only the reported paths)
    paths_checked: int = 0  # files stat-compared with the files table
    files_changed: int = 0  # files (re)chunked
    files_deleted: int = 0
    files_touched: int = 0  # stat moved but the content hash did not: nothing re-chunked
    chunks_written: int = 0
    chunks_embedded: int = 0  # the model ran on these (cache misses)
    applied: bool = False  # the index changed (took the write lock)
    durable: bool = False  # the vector index was saved to disk as well
    scan_s: float = 0.0
    seconds: float = 0.0
    changed_paths: list[str] = field(default_factory=list)  # a sample, for the update line
    note: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.files_changed or self.files_deleted)

    def to_dict(self) -> dict:
        return asdict(self)


def semantic_note(coverage: float) -> str:
    """Why semantic results may be missing while embeddings fill in (search notes, CLI, MCP)."""
    return (
        f"{coverage:.0%} of the index is semantic so far: keyword matches cover every indexed chunk, "
        "semantic ones only the chunks embedded yet (the rest fill in behind)"
    )


def human_bytes(n: int) -> str:
    """``1.5 MB``: sizes as the CLI and the MCP tools print them."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
