"""Output models of the MCP tools: each one is published as the tool's ``outputSchema``.

Clients validate ``structuredContent`` against these schemas, so they are the contract with agents
and eval scripts; field names are snake_case and stable (the reference names only inputs).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["not_indexed", "indexing", "indexed", "failed"]


class SearchHit(BaseModel):
    """One search result: a span of one file (neighbouring hits already merged)."""

    path: str = Field(description="File path relative to the codebase root (POSIX separators).")
    start_line: int = Field(description="First line of the span, 1-based.")
    end_line: int = Field(description="Last line of the span, inclusive.")
    language: str
    symbol: str = Field(description="Dotted symbol path of the definition(s), '' for module-level code.")
    kind: str = Field(description="function, method, class, ..., or text for line windows.")
    score: float = Field(description="Fused rank score; higher is better, comparable within one call only.")
    content: str = Field(description="Exactly the file's lines start_line..end_line.")
    context: str = Field(
        default="", description="Header of the enclosing definition (e.g. the class) when not in content."
    )
    root: str = Field(default="", description="Absolute root of the codebase this result comes from.")


class Paging(BaseModel):
    """Where this page sits: pass ``next_offset`` as ``offset`` for the next one."""

    offset: int = Field(0, description="Results skipped before this page.")
    next_offset: int | None = Field(
        None, description="The offset of the next page; null when there is nothing more."
    )
    has_more: bool = Field(False, description="True if results beyond this page exist.")


class SearchOutput(Paging):
    root: str = Field(description="Absolute root of the codebase searched ('' when several were).")
    roots: list[str] = Field(default_factory=list, description="Every codebase searched, in one ranking.")
    subfolder: str = Field(description="Subfolder searched, relative to root; '' for the whole codebase.")
    query: str
    mode: str
    results: list[SearchHit]
    partial: bool = Field(description="True while indexing runs: results cover what is indexed so far.")
    percent: float = Field(description="Indexing progress when partial, else 100.")
    truncated: bool = Field(description="True if the token budget cut a result or left results out.")
    max_tokens: int = Field(description="Token budget used for result contents.")
    note: str = ""
    semantic_coverage: float = Field(
        default=1.0, description="Share of indexed chunks that have vectors (< 1 while embeddings fill in)."
    )
    took_ms: float


class IndexOutput(BaseModel):
    root: str
    status: Status = Field(description="State of the index right after this call.")
    started: bool = Field(description="False if a job for this codebase was already running here.")
    waited: bool = Field(description="True if the call held until indexing ended (wait=true).")
    message: str
    percent: float = 0.0
    files_done: int = 0
    files_total: int = 0
    chunks_done: int = 0
    files: int = Field(0, description="Files in the index (after the run when waited).")
    chunks: int = Field(0, description="Chunks in the index (after the run when waited).")
    files_changed: int | None = Field(
        None, description="Files re-chunked by this run (once it has finished)."
    )
    chunks_embedded: int | None = Field(
        None, description="Chunks the model ran on (cache misses), once finished."
    )
    seconds: float | None = Field(None, description="Duration of the run (once it has finished).")


class StatusOutput(BaseModel):
    root: str = Field(description="Root of the codebase the path belongs to.")
    status: Status
    percent: float = Field(description="0-100; 100 when indexed.")
    files: int = Field(description="Files currently in the index.")
    chunks: int = Field(description="Chunks currently in the index.")
    skipped_files: int = 0
    files_done: int = Field(0, description="Files processed by the current (or last) run.")
    files_total: int = Field(0, description="Files the current (or last) run has to process.")
    chunks_done: int = 0
    chunks_per_s: float = 0.0
    started_at: str | None = Field(None, description="ISO 8601 time the current/last run started.")
    last_indexed_at: str | None = Field(None, description="ISO 8601 time indexing last completed.")
    error: str = Field("", description="Why indexing failed (status failed only).")
    model: str = ""
    vector_index: str = Field("", description="Vector index kind: hnsw (none), int8 or rabitq; or milvus.")
    chunks_pending: int = Field(0, description="Chunks stored but still waiting for their vectors.")
    size_bytes: int = Field(0, description="Size of the index on disk.")
    languages: dict[str, int] = Field(default_factory=dict, description="Indexed files per language.")
    watcher: str = Field(
        "off",
        description="File watcher keeping this index fresh (any process): off (none: changes wait for "
        "the next index run), starting, watching (file events), polling (periodic scans) or error.",
    )
    watcher_message: str = Field("", description="Why the watcher polls or fails, or what it waits for.")
    watcher_pid: int | None = Field(None, description="Process id of the live watcher.")
    last_change_at: str | None = Field(
        None, description="ISO 8601 time a change was last applied to the index (watcher or index run)."
    )
    note: str = Field("", description="What the next index_codebase call would change, if anything.")


class CodebaseSummary(BaseModel):
    root: str
    status: Status
    percent: float
    files: int
    chunks: int
    size_bytes: int
    last_indexed_at: str | None = None
    error: str = ""


class ListOutput(BaseModel):
    codebases: list[CodebaseSummary]


class ClearOutput(BaseModel):
    root: str = Field(description="Root whose index was removed.")
    cleared: bool
    stopped_job: bool = Field(description="True if a running indexing job was stopped first.")
    message: str


class SymbolHit(BaseModel):
    path: str
    start_line: int
    end_line: int
    language: str
    symbol: str
    kind: str
    signature: str = Field(description="First line(s) of the definition.")


class SymbolOutput(Paging):
    root: str
    name: str
    kind: str | None
    results: list[SymbolHit]
    truncated: bool = Field(False, description="True if the token budget left definitions of this page out.")
    note: str = ""


class ReferenceHit(BaseModel):
    path: str = Field(description="File path relative to the codebase root.")
    line: int = Field(description="1-based line of the definition or use.")
    kind: str = Field(description="definition, call, import, type or use (passed as an argument, exported).")
    context: str = Field(description="The line's text (stripped, cut to 160 characters).")
    symbol: str = Field("", description="Definitions: the dotted symbol.")
    end_line: int = Field(0, description="Definitions: their last line.")


class ReferencesOutput(Paging):
    root: str
    name: str
    results: list[ReferenceHit] = Field(description="Definitions first, then uses by path and line.")
    truncated: bool = Field(False, description="True if the token budget left items of this page out.")
    note: str = ""
