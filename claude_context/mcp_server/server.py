"""The MCP tools: thin shells over ``Engine`` that add path handling, error wording and formatting.

Every tool returns a text block for the model and ``structuredContent`` matching its declared
output model (``schemas.py``). No indexing or search logic lives here: the CLI and this server are
two faces of the same engine API. Tool and parameter names follow the reference Claude Context
(camelCase parameters), so prompts written for it keep working.

Deliberately no ``from __future__ import annotations``: the SDK reads the tool signatures at
registration time, and plain annotations keep that independent of how it resolves strings.
"""

import contextlib
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from claude_context import __version__, limits
from claude_context.config import MAX_LIMIT, MAX_OFFSET, Quantization, SearchMode, choices
from claude_context.engine import MAX_LOOKUP, Engine, IndexJob
from claude_context.errors import ClaudeContextError, IndexBusyError, IndexCancelled, NotIndexedError
from claude_context.faults import classify
from claude_context.mcp_server.schemas import (
    ClearOutput,
    CodebaseSummary,
    IndexOutput,
    ListOutput,
    ReferenceHit,
    ReferencesOutput,
    SearchHit,
    SearchOutput,
    StatusOutput,
    SymbolHit,
    SymbolOutput,
)
from claude_context.mcp_server.text import search_text, status_text
from claude_context.records import SearchFilter
from claude_context.reports import CodebaseStatus, IndexReport, human_bytes
from claude_context.search.results import CHARS_PER_TOKEN

log = logging.getLogger(__name__)

MIN_TOKENS, MAX_TOKENS = 100, 100_000
SPLITTER_ALIASES = {"langchain": "text"}  # the reference's name for line windows
POLL_S = 0.25

INSTRUCTIONS = """\
Local code search over indexed codebases (semantic + keyword; nothing leaves this machine).
When to call which tool:
- Before reading files to find where something happens or is implemented ("where do we retry
  uploads?", "how is auth checked?"): search_code(query, path). It returns the relevant spans with
  path:line, usually cheaper and better than grep or listing folders. Omit path (or pass a list)
  to search every indexed codebase at once; each result names its root.
- You know a name and want its definition: find_symbol(path, name).
- Before changing a function, class or type, see who uses it: find_references(path, name)
  (definition first, then call sites, imports and type uses, each with path:line and the line).
- A codebase is not indexed (the error says so): index_codebase(path) once; it returns at once and
  indexes in the background; searching works meanwhile. The index then stays fresh by itself.
- get_indexing_status(path) shows progress; list_codebases() what is indexed.
Results are bounded (maxTokens); when a reply says has_more / next_offset, call again with
offset=next_offset for the next page. Pass absolute paths; a subfolder path searches only it."""


# -- helpers --------------------------------------------------------------------------------------


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds") if ts else None


def _result(text: str, model: BaseModel, cap: int = 10_000) -> CallToolResult:
    """The two faces of every answer: text for the model, structured data for programs. The text
    never exceeds ``cap`` tokens (``max_output_tokens``; 4 characters a token): paged tools stay
    far below it through their own budget, this is the guard for everything else."""
    if len(text) > cap * CHARS_PER_TOKEN:
        head = text[: cap * CHARS_PER_TOKEN - 200].rsplit("\n", 1)[0]
        text = f"{head}\n[Output cut at about {cap} tokens (max_output_tokens): ask for less.]"
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=model.model_dump(mode="json")
    )


def _budget(engine: Engine, max_tokens: int | None) -> tuple[int, str]:
    """The content budget of a paged tool: ``maxTokens`` (checked) or the configured default, at
    most ``max_output_tokens``; the note says when it was lowered."""
    budget = engine.config.token_budget if max_tokens is None else max_tokens
    if not MIN_TOKENS <= budget <= MAX_TOKENS:
        raise ToolError(f"maxTokens must be between {MIN_TOKENS} and {MAX_TOKENS}, not {budget}")
    cap = engine.config.max_output_tokens * 4 // 5  # room for paths, line numbers and notes
    if budget > cap:
        return cap, f"maxTokens lowered to {cap} (max_output_tokens)"
    return budget, ""


def _page_text(out: Any) -> str:
    """The paging line of a text answer: how to get the next page, or why this one is empty."""
    if out.has_more and out.next_offset is not None:
        return f"More results: call again with offset={out.next_offset}."
    return ""


def _fields(model: type[BaseModel], record: Any, **override: Any) -> dict[str, Any]:
    """The fields of an output model taken from an engine record (a dataclass), by name."""
    return {name: getattr(record, name) for name in model.model_fields if hasattr(record, name)} | override


def _status_model(st: CodebaseStatus) -> StatusOutput:
    times = {k: _iso(getattr(st, k)) for k in ("started_at", "last_indexed_at", "last_change_at")}
    kind = str((st.index or {}).get("vector_index") or "")
    return StatusOutput(**_fields(StatusOutput, st, languages=dict(st.languages), vector_index=kind, **times))


def _error_message(exc: ClaudeContextError, path: Path | None = None) -> str:
    """The one mapping of engine errors to what the model reads."""
    if isinstance(exc, NotIndexedError):
        where = f"{path} is" if path is not None else "this codebase is"
        return (
            f"{where} not indexed yet: call index_codebase with the codebase root first "
            "(searching is possible while it indexes)"
        )
    if isinstance(exc, IndexBusyError):
        return f"{exc}. Its progress shows in get_indexing_status; retry when it is done."
    if isinstance(exc, IndexCancelled):
        return "indexing was cancelled"
    return str(exc)


@contextlib.contextmanager
def tool_errors(path: Path | None = None) -> Iterator[None]:
    """Turn engine errors into tool errors whose message the model can act on (others are bugs)."""
    try:
        yield
    except ClaudeContextError as exc:
        raise ToolError(_error_message(exc, path)) from None
    except Exception as exc:  # a storage fault (disk full, read-only, damaged) is a sentence too
        mapped = classify(exc)
        if mapped is None:
            raise  # a bug: the SDK logs it and the model reads only that the tool failed
        raise ToolError(_error_message(mapped, path)) from None


class _Paths:
    """Tool paths: ~ expanded, relative ones against the server's working directory, and the
    messages an agent can act on (a file instead of a folder, a folder that does not exist)."""

    def __init__(self, engine: Engine, base: Path) -> None:
        self.engine, self.base = engine, base

    def resolve(self, path: str) -> Path:
        if path is None or not str(path).strip():
            raise ToolError("path is empty: pass the absolute path of the codebase folder")
        with tool_errors():
            limits.check_path(path)
        p = Path(os.path.expanduser(str(path).strip()))
        try:
            return (p if p.is_absolute() else self.base / p).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            raise ToolError(f"cannot resolve path {path}: {exc}") from None

    def folder(self, path: str, *, indexed_ok: bool = False) -> Path:
        """A folder that exists; with ``indexed_ok`` a vanished folder that still has an index passes
        (status and clear still work)."""
        p = self.resolve(path)
        if p.is_dir():
            return p
        if p.exists():
            raise ToolError(
                f"path is a file, not a folder: {p}. Pass the codebase folder "
                "(search_code's pathFilter narrows results to files)"
            )
        if indexed_ok:
            with tool_errors(p):
                st = self.engine.status(p)
            if st.status != "not_indexed" and Path(st.root) == p:
                return p
        raise ToolError(f"path does not exist: {p}")


# -- server ---------------------------------------------------------------------------------------


def build_server(
    engine: Engine,
    *,
    cwd: Path | None = None,
    token_verifier: TokenVerifier | None = None,
    auth: AuthSettings | None = None,
    log_level: str = "WARNING",
) -> MCPServer:
    """An MCPServer with the seven tools bound to ``engine``. Build it when serving, not at import."""
    base = (cwd or Path.cwd()).resolve()
    server: MCPServer = MCPServer(
        "claude-context",
        version=__version__,
        instructions=INSTRUCTIONS,
        token_verifier=token_verifier,
        auth=auth,
        log_level=log_level,  # type: ignore[arg-type]
    )
    path_help = (
        f"ABSOLUTE path of the codebase root folder (~ is expanded; a relative path is resolved against "
        f"the server's working directory, {base})."
    )
    paths = _Paths(engine, base)
    for register in (
        _index_tool,
        _search_tool,
        _clear_tool,
        _status_tool,
        _list_tool,
        _symbol_tool,
        _references_tool,
    ):
        register(server, engine, paths, path_help)
    _strict_arguments(server)
    _offer_tools_only(server)
    return server


_STRICT = ConfigDict(arbitrary_types_allowed=True, extra="forbid", strict=True)


def _strict_arguments(server: MCPServer) -> None:
    """Unknown argument names and wrong types are errors naming the argument, not silently
    ignored or coerced (``limit: true``, ``force: "yes"``). The SDK builds each tool's argument
    model from its signature with pydantic's lax defaults; it reads ``arg_model`` at every call, so
    a strict subclass (and its schema, which now says ``additionalProperties: false``) replaces it."""
    for tool in server._tool_manager.list_tools():  # no public hook for the argument model's config
        base = tool.fn_metadata.arg_model
        strict = type(base.__name__, (base,), {"model_config": _STRICT, "__module__": base.__module__})
        tool.fn_metadata.arg_model = strict
        tool.parameters = strict.model_json_schema(by_alias=True)


def _offer_tools_only(server: MCPServer) -> None:
    """Advertise only what is offered: the SDK registers prompt and resource handlers (and so
    advertises both capabilities) even with none defined. Without them an unknown prompt or
    resource gets JSON-RPC "method not found" (-32601) instead of an error with code 0."""
    handlers = server._lowlevel_server._request_handlers  # no public way to unregister a method
    for method in [m for m in handlers if m.startswith(("prompts/", "resources/"))]:
        del handlers[method]


# -- index_codebase -------------------------------------------------------------------------------

QuantizationArg = Annotated[
    str | None,
    Field(
        description="Vector index: none (full precision), int8 (1/4 of the memory), rabitq (about 1/18) "
        "or auto (rabitq above 50,000 chunks). Remembered per codebase; switching rebuilds the vector "
        "index from stored embeddings, nothing is re-embedded.",
        json_schema_extra={"enum": [*choices(Quantization), None]},
    ),
]


def _index_tool(server: MCPServer, engine: Engine, paths: _Paths, path_help: str) -> None:
    @server.tool(
        name="index_codebase",
        description=(
            "Index a codebase folder for search_code. Returns at once: indexing runs in the background "
            "(check get_indexing_status; search_code works meanwhile on what is indexed so far). "
            "Calling it again updates the index incrementally (only changed files); while a job runs "
            "it reports that job instead of starting another. force=true re-chunks every file (cheap: "
            "embeddings are cached). wait=true holds the call until indexing ends and sends progress "
            "notifications."
        ),
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True),
    )
    async def index_codebase(
        ctx: Context,
        path: Annotated[str, Field(description=path_help)],
        force: Annotated[bool, Field(description="Re-index every file even if unchanged.")] = False,
        splitter: Annotated[
            str,
            Field(
                description="'ast' (syntax-aware chunks, line windows as fallback) or 'text' (line windows "
                "only); 'langchain' is accepted as 'text'.",
                json_schema_extra={"enum": ["ast", "text", "langchain"]},
            ),
        ] = "ast",
        customExtensions: Annotated[
            list[str],
            Field(
                description="Extra file extensions to index beyond the defaults, e.g. ['.vue', '.svelte']."
            ),
        ] = [],  # noqa: B006 - never mutated; a literal default shows in the schema
        ignorePatterns: Annotated[
            list[str],
            Field(description="Extra gitignore-style patterns to skip, e.g. ['static/**', '*.tmp']."),
        ] = [],  # noqa: B006
        wait: Annotated[
            bool,
            Field(description="Hold the call until indexing finishes (progress notifications if asked)."),
        ] = False,
        quantization: QuantizationArg = None,
    ) -> Annotated[CallToolResult, IndexOutput]:
        split = _index_args(splitter, customExtensions, ignorePatterns)
        p = paths.folder(path)

        def start() -> tuple[IndexJob, bool, str]:
            with tool_errors(p):
                before = engine.status(p)  # a codebase that already contains p, if any
                outer = before.root if before.status != "not_indexed" and Path(before.root) != p else ""
                job, started = engine.start_index(
                    p,
                    force=force,
                    splitter=split,
                    ignore_patterns=list(ignorePatterns) or None,
                    extensions=list(customExtensions) or None,
                    quantization=quantization,
                )
            return job, started, outer

        job, started, outer = await anyio.to_thread.run_sync(start)
        if wait:
            await _follow(ctx, job)
        mapped = classify(job.error) if not job.running and job.error is not None else None
        if mapped is not None:
            raise ToolError(_error_message(mapped, p))
        if not job.running and job.error is not None:
            raise ToolError(f"indexing failed: {type(job.error).__name__}: {job.error}")
        st = await anyio.to_thread.run_sync(engine.status, p)
        report = job.report if not job.running else None
        fields = _fields(IndexOutput, st, root=str(job.root), started=started, waited=bool(wait), message="")
        out = IndexOutput(**fields)
        out.message = _index_message(job, st, report, started, force, split)
        if report is not None:  # finished: waited for, or over before this call returned
            out.files_changed, out.chunks_embedded = report.files_changed, report.chunks_embedded
            out.seconds = report.seconds
        if outer:
            out.message += (
                f" Note: {p} lies inside the indexed codebase {outer}, which search_code can already "
                "search by subfolder; this folder now gets an index of its own."
            )
        return _result(out.message, out)


def _index_args(splitter: str, extensions: list[str], patterns: list[str]) -> str:
    """Bounds on index_codebase's lists; the splitter's canonical name."""
    with tool_errors():
        limits.check_list(extensions, "customExtensions")
        limits.check_list(patterns, "ignorePatterns")
    split = str(splitter).strip().lower()
    return SPLITTER_ALIASES.get(split, split)


async def _follow(ctx: Context, job: IndexJob) -> None:
    """Hold until the job ends, sending progress notifications as it moves."""
    last: tuple[int, int, int, str] | None = None
    while job.running:
        prog = job.progress
        if prog is not None:
            key = (prog.files_done, prog.files_total, prog.chunks_done, prog.phase)
            if key != last:
                last = key
                await ctx.report_progress(
                    prog.files_done,
                    prog.files_total or None,
                    f"{prog.phase}: {prog.files_done}/{prog.files_total} files, {prog.chunks_done} chunks",
                )
        await anyio.sleep(POLL_S)
    if job.report is not None:  # a final 100%, so even a run shorter than one poll reports
        n = max(1, job.report.files_changed + job.report.files_deleted)
        await ctx.report_progress(
            n, n, f"done: {job.report.files_total} files, {job.report.chunks_total} chunks"
        )


def _index_message(
    job: IndexJob, st: CodebaseStatus, report: IndexReport | None, started: bool, force: bool, split: str
) -> str:
    if report is not None:
        return (
            f"Indexed {report.root}: {report.files_total} files, {report.chunks_total} chunks "
            f"({report.files_changed} changed, {report.files_deleted} deleted, {report.files_unchanged} "
            f"unchanged; {report.chunks_embedded} chunks embedded) in {report.seconds:.1f}s. "
            "Ready for search."
        )
    if started:
        return (
            f"Started background indexing of {job.root} ({'full re-index' if force else 'incremental'}, "
            f"{split} splitter). It returns at once: poll get_indexing_status for progress. search_code "
            "already works and covers what is indexed so far."
        )
    return (
        f"{job.root} is already being indexed ({st.percent:.0f}%, "
        f"{st.files_done}/{st.files_total} files); "
        "not starting a second job"
        + (" (force is ignored while it runs)" if force else "")
        + ". Poll get_indexing_status for progress; search_code works meanwhile."
    )


# -- search_code ----------------------------------------------------------------------------------


def _search_tool(server: MCPServer, engine: Engine, paths: _Paths, path_help: str) -> None:
    @server.tool(
        name="search_code",
        description=(
            "Search an indexed codebase with a natural-language query or identifiers (hybrid semantic + "
            "keyword by default). Returns code spans with path:start-end and their content; neighbouring "
            "hits of one file are merged and the total is kept within a token budget. A path inside the "
            "codebase searches only that subfolder. Works during indexing (results marked partial). If the "
            "codebase is not indexed, the error says so: call index_codebase first."
        ),
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    def search_code(
        query: Annotated[str, Field(description="What to find, in plain words and/or identifiers.")],
        path: Annotated[
            str | list[str] | None,
            Field(
                description=path_help + " A subfolder restricts the search to it. A list of codebases "
                "searches them all in one ranking; omit it to search every indexed codebase."
            ),
        ] = None,
        limit: Annotated[
            int,
            Field(
                description=f"Maximum number of results (1-{MAX_LIMIT}).",
                json_schema_extra={"minimum": 1, "maximum": MAX_LIMIT},
            ),
        ] = 10,
        extensionFilter: Annotated[
            list[str], Field(description="Only files with these extensions, e.g. ['.py', '.ts'].")
        ] = [],  # noqa: B006
        pathFilter: Annotated[
            list[str],
            Field(
                description="Only paths (relative to the root) matching any of these globs, e.g. ['src/**']."
            ),
        ] = [],  # noqa: B006
        excludePatterns: Annotated[
            list[str], Field(description="Skip paths matching any of these globs, e.g. ['**/tests/**'].")
        ] = [],  # noqa: B006
        languageFilter: Annotated[
            list[str], Field(description="Only these languages, e.g. ['python', 'typescript'].")
        ] = [],  # noqa: B006
        mode: Annotated[
            str,
            Field(
                description="hybrid (semantic + keyword, best default), semantic, or keyword.",
                json_schema_extra={"enum": list(choices(SearchMode))},
            ),
        ] = "hybrid",
        maxTokens: Annotated[
            int | None,
            Field(
                description=f"Token budget for result contents (default {engine.config.token_budget}; "
                f"{MIN_TOKENS}-{MAX_TOKENS}, lowered to {engine.config.max_output_tokens}).",
            ),
        ] = None,
        offset: Annotated[
            int,
            Field(
                description="Skip this many results: pass next_offset from the previous reply for the "
                f"next page (0-{MAX_OFFSET}).",
                json_schema_extra={"minimum": 0, "maximum": MAX_OFFSET},
            ),
        ] = 0,
    ) -> Annotated[CallToolResult, SearchOutput]:
        filters = SearchFilter(
            extensions=list(extensionFilter),
            include_globs=list(pathFilter),
            exclude_globs=list(excludePatterns),
            languages=list(languageFilter),
        )
        return _search(engine, paths, path, query, limit, mode, filters, maxTokens, offset)


def _search(
    engine: Engine,
    paths: _Paths,
    path: str | list[str] | None,
    query: str,
    limit: int,
    mode: str,
    filters: SearchFilter,
    max_tokens: int | None,
    offset: int,
) -> CallToolResult:
    """search_code's work once its arguments are read: one codebase, a list, or all of them."""
    budget, lowered = _budget(engine, max_tokens)
    if not query or not query.strip():
        raise ToolError("query is empty: say what to look for")
    with tool_errors():
        limits.check_text(query, "query", limits.MAX_QUERY_CHARS)
        limits.check_globs(filters.include_globs, "pathFilter")
        limits.check_globs(filters.exclude_globs, "excludePatterns")
        limits.check_list(filters.extensions, "extensionFilter")
        limits.check_list(filters.languages, "languageFilter")
    if isinstance(path, str):
        target: Path | list[Path] | None = paths.folder(path, indexed_ok=True)
    else:
        target = [paths.folder(p, indexed_ok=True) for p in path or []]
    with tool_errors(target if isinstance(target, Path) else None):
        resp = engine.search(
            target, query, limit=limit, mode=mode, filters=filters, token_budget=budget, offset=offset
        )
        percent = 100.0
        if resp.partial:
            percent = min((engine.status(r).percent for r in resp.roots), default=100.0)
    hits = [SearchHit(**_fields(SearchHit, r)) for r in resp.results]
    out = SearchOutput(**_fields(SearchOutput, resp, results=hits, percent=percent, max_tokens=budget))
    if lowered:
        out.note = f"{out.note}; {lowered}" if out.note else lowered
    return _result(search_text(out) + _tail(_page_text(out)), out, engine.config.max_output_tokens)


def _tail(line: str) -> str:
    return f"\n{line}" if line else ""


# -- clear_index, get_indexing_status, list_codebases, find_symbol ---------------------------------


def _clear_tool(server: MCPServer, engine: Engine, paths: _Paths, path_help: str) -> None:
    @server.tool(
        name="clear_index",
        description=(
            "Delete the index of a codebase (stops its running indexing job first). The shared "
            "embedding cache is kept, so indexing it again later is fast."
        ),
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
    )
    def clear_index(
        path: Annotated[str, Field(description=path_help)],
    ) -> Annotated[CallToolResult, ClearOutput]:
        p = paths.folder(path, indexed_ok=True)
        with tool_errors(p):
            job = engine.job(engine.status(p).root or p)
            running = job is not None and job.running
            root = engine.clear(p)
        message = f"Cleared the index of {root}" + (
            " (stopped the running indexing job first)." if running else "."
        )
        out = ClearOutput(root=root, cleared=True, stopped_job=running, message=message)
        return _result(message, out)


def _status_tool(server: MCPServer, engine: Engine, paths: _Paths, path_help: str) -> None:
    @server.tool(
        name="get_indexing_status",
        description=(
            "Indexing status of a codebase: not_indexed, indexing (with percent, files and chunks done), "
            "indexed, or failed (with the error); plus index size and when it was last indexed. The "
            "status lives in the index itself, so every server process sees the same."
        ),
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    def get_indexing_status(
        path: Annotated[str, Field(description=path_help)],
    ) -> Annotated[CallToolResult, StatusOutput]:
        p = paths.folder(path, indexed_ok=True)
        with tool_errors(p):
            out = _status_model(engine.status(p))
        return _result(status_text(out), out)


def _list_tool(server: MCPServer, engine: Engine, paths: _Paths, path_help: str) -> None:
    @server.tool(
        name="list_codebases",
        description="Every codebase that has an index here, with its status, size and last indexing time.",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    def list_codebases() -> Annotated[CallToolResult, ListOutput]:
        with tool_errors():
            statuses = engine.list_codebases()
        items = [
            CodebaseSummary(**_fields(CodebaseSummary, s, last_indexed_at=_iso(s.last_indexed_at)))
            for s in statuses
        ]
        if not items:
            text = "No codebases are indexed yet. Call index_codebase with a codebase folder."
        else:
            text = f"{len(items)} indexed codebase(s):\n" + "\n".join(
                f"- {c.root}: {c.status}"
                + (f" {c.percent:.0f}%" if c.status == "indexing" else "")
                + f", {c.files} files, {c.chunks} chunks, {human_bytes(c.size_bytes)}, "
                f"last indexed {c.last_indexed_at or 'never'}" + (f", error: {c.error}" if c.error else "")
                for c in items
            )
        return _result(text, ListOutput(codebases=items))


def _symbol_tool(server: MCPServer, engine: Engine, paths: _Paths, path_help: str) -> None:
    @server.tool(
        name="find_symbol",
        description=(
            "Find definitions (functions, classes, methods, ...) by symbol name in an indexed codebase: "
            "exact name matches first, then names starting with it. Returns path, lines, kind and "
            "signature. Faster and more precise than search_code when the name is known."
        ),
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    def find_symbol(
        path: Annotated[str, Field(description=path_help + " A subfolder restricts the lookup to it.")],
        name: Annotated[str, Field(description="Symbol name (e.g. 'load') or dotted path ('Config.load').")],
        kind: Annotated[
            str | None, Field(description="Only this kind: function, method, class, interface, struct, ...")
        ] = None,
        limit: Annotated[int, Field(description=f"Maximum number of definitions (1-{MAX_LOOKUP}).")] = 20,
        offset: Annotated[
            int, Field(description="Skip this many definitions: next_offset of the previous reply.")
        ] = 0,
        maxTokens: Annotated[
            int | None, Field(description="Token budget for the definitions listed (default: token_budget).")
        ] = None,
    ) -> Annotated[CallToolResult, SymbolOutput]:
        if not name or not name.strip():
            raise ToolError("name is empty: pass the symbol name to look for")
        with tool_errors():
            limits.check_text(name, "name", limits.MAX_NAME_CHARS)
            limits.check_text(kind or "", "kind", limits.MAX_NAME_CHARS)
        budget, lowered = _budget(engine, maxTokens)
        p = paths.folder(path, indexed_ok=True)
        with tool_errors(p):
            found = engine.symbols(
                p, name.strip(), kind or None, limit=limit, offset=offset, token_budget=budget
            )
        hits = [SymbolHit(**_fields(SymbolHit, h)) for h in found.results]
        out = SymbolOutput(**_fields(SymbolOutput, found, results=hits))
        out.note = "; ".join(x for x in (out.note, lowered) if x)
        root = out.root
        if not hits:
            text = f'No definition named "{out.name}"' + (f" of kind {kind}" if kind else "") + f" in {root}."
        else:
            text = f'{len(hits)} definition(s) matching "{out.name}" in {root}:\n' + "\n".join(
                f"{i}. {h.path}:{h.start_line}-{h.end_line}  {h.symbol} ({h.kind}, {h.language})\n"
                f"   {h.signature}"
                for i, h in enumerate(hits, out.offset + 1)
            )
        text += _tail(out.note) + _tail(_page_text(out))
        return _result(text, out, engine.config.max_output_tokens)


def _references_tool(server: MCPServer, engine: Engine, paths: _Paths, path_help: str) -> None:
    @server.tool(
        name="find_references",
        description=(
            "Where a function, class, type or variable is defined and used in an indexed codebase: the "
            "definition(s) first, then every call site, import, type use and argument, each with "
            "path:line and the line's text. Use it before changing or removing something, to see who "
            "depends on it. Names are matched exactly (a method name matches every call of that name)."
        ),
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    def find_references(
        path: Annotated[str, Field(description=path_help + " A subfolder restricts the lookup to it.")],
        name: Annotated[str, Field(description="The name used, e.g. 'load_config' or 'Config.load'.")],
        limit: Annotated[int, Field(description=f"Maximum number of items (1-{MAX_LOOKUP}).")] = 50,
        offset: Annotated[
            int, Field(description="Skip this many items: next_offset of the previous reply.")
        ] = 0,
        maxTokens: Annotated[
            int | None, Field(description="Token budget for the items listed (default: token_budget).")
        ] = None,
    ) -> Annotated[CallToolResult, ReferencesOutput]:
        if not name or not name.strip():
            raise ToolError("name is empty: pass the name to look for")
        budget, lowered = _budget(engine, maxTokens)
        p = paths.folder(path, indexed_ok=True)
        with tool_errors(p):
            found = engine.references(p, name.strip(), limit=limit, offset=offset, token_budget=budget)
        hits = [ReferenceHit(**_fields(ReferenceHit, h)) for h in found.results]
        out = ReferencesOutput(**_fields(ReferencesOutput, found, results=hits))
        out.note = "; ".join(x for x in (out.note, lowered) if x)
        if not hits:
            text = f'No references to "{out.name}" in {out.root}: {out.note or "nothing found"}.'
        else:
            text = f'References to "{out.name}" in {out.root} (definitions first):\n' + "\n".join(
                f"{i}. {h.path}:{h.line}  [{h.kind}]  {h.context}" for i, h in enumerate(hits, out.offset + 1)
            )
            text += _tail(out.note)
        return _result(text + _tail(_page_text(out)), out, engine.config.max_output_tokens)
