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
import time
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
from pydantic import BaseModel, Field

from claude_context import __version__
from claude_context.config import ConfigError
from claude_context.embedding import EmbeddingError
from claude_context.engine import CodebaseStatus, Engine, IndexCancelled, NotIndexedError, UserError
from claude_context.index.base import IndexBusyError, StoreError
from claude_context.mcp_server.schemas import (
    ClearOutput,
    CodebaseSummary,
    IndexOutput,
    ListOutput,
    SearchHit,
    SearchOutput,
    StatusOutput,
    SymbolHit,
    SymbolOutput,
)
from claude_context.models import SearchFilter

log = logging.getLogger(__name__)

MAX_LIMIT = 50  # as the reference: agents written for it never ask for more
MIN_TOKENS, MAX_TOKENS = 100, 100_000
MODES = ("hybrid", "semantic", "keyword")
SPLITTERS = {"ast": "ast", "text": "text", "langchain": "text"}  # "langchain": the reference's name
START_WAIT_S = 5.0  # how long index_codebase waits for a new job to show up in the store
POLL_S = 0.25

INSTRUCTIONS = """\
Semantic + keyword code search over local codebases (nothing leaves this machine).
Typical flow: index_codebase(path) once (it returns at once and indexes in the background; later
calls update incrementally), then search_code(path, query). Searching works while indexing runs
(results are marked partial); get_indexing_status(path) shows progress. find_symbol finds
definitions by name. Pass the codebase's absolute root path; a subfolder path searches only it."""


# -- helpers --------------------------------------------------------------------------------------


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds") if ts else None


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _result(text: str, model: BaseModel) -> CallToolResult:
    """The two faces of every answer: text for the model, structured data for programs."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=model.model_dump(mode="json")
    )


def _error_message(exc: BaseException, path: Path | None = None) -> str | None:
    """The message the model sees for an engine error; None for errors that are bugs."""
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
    if isinstance(exc, UserError | EmbeddingError | ConfigError | StoreError):
        return str(exc)
    return None


@contextlib.contextmanager
def _tool_errors(path: Path | None = None) -> Iterator[None]:
    """Turn engine errors into tool errors whose message the model can act on."""
    try:
        yield
    except ToolError:
        raise
    except Exception as exc:
        message = _error_message(exc, path)
        if message is None:
            raise
        raise ToolError(message) from None


def _fence(content: str) -> str:
    """A code fence longer than any backtick run in the content, so the block cannot break."""
    longest, run = 0, 0
    for ch in content:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _status_model(st: CodebaseStatus) -> StatusOutput:
    return StatusOutput(
        root=st.root,
        status=st.status,  # type: ignore[arg-type]
        percent=st.percent,
        files=st.files,
        chunks=st.chunks,
        skipped_files=st.skipped_files,
        files_done=st.files_done,
        files_total=st.files_total,
        chunks_done=st.chunks_done,
        chunks_per_s=st.chunks_per_s,
        started_at=_iso(st.started_at),
        last_indexed_at=_iso(st.last_indexed_at),
        error=st.error,
        model=st.model,
        size_bytes=st.size_bytes,
        languages=dict(st.languages),
        watcher=st.watcher,
        watcher_message=st.watcher_message,
        watcher_pid=st.watcher_pid,
        last_change_at=_iso(st.last_change_at),
    )


def _status_text(st: StatusOutput) -> str:
    if st.status == "not_indexed":
        return f"{st.root} is not indexed. Call index_codebase to index it."
    lines: list[str] = []
    if st.status == "indexing":
        lines.append(
            f"{st.root} is being indexed: {st.percent:.1f}% ({st.files_done}/{st.files_total} files, "
            f"{st.chunks_done} chunks so far, {st.chunks_per_s:.0f} chunks/s). "
            "search_code already works on what is indexed so far."
        )
    elif st.status == "indexed":
        lines.append(f"{st.root} is fully indexed and ready for search.")
    else:
        lines.append(
            f"{st.root}: indexing failed: {st.error or 'unknown error'}. Call index_codebase to retry."
        )
    lines.append(
        f"Index: {st.files} files ({st.skipped_files} skipped), {st.chunks} chunks, "
        f"{_human_bytes(st.size_bytes)} on disk; last indexed {st.last_indexed_at or 'never'}"
        + (f"; model {st.model}" if st.model else "")
    )
    if st.languages:
        top = sorted(st.languages.items(), key=lambda kv: -kv[1])[:8]
        lines.append("Languages: " + ", ".join(f"{lang} {n}" for lang, n in top))
    why = f": {st.watcher_message}" if st.watcher_message else ""
    if st.watcher == "watching":
        lines.append(f"Watcher: watching (saved files are searchable within about a second){why}")
    elif st.watcher == "polling":
        lines.append(f"Watcher: polling (file changes are picked up by periodic scans){why}")
    elif st.watcher == "off":
        lines.append("Watcher: off (file changes reach the index at the next index_codebase call)")
    else:
        lines.append(f"Watcher: {st.watcher}{why}")
    lines.append(f"Last change applied: {st.last_change_at or 'never'}")
    return "\n".join(lines)


def _search_text(out: SearchOutput) -> str:
    where = out.root + (f" (subfolder {out.subfolder})" if out.subfolder else "")
    head = (
        f'Found {len(out.results)} results for "{out.query}" in {where} ({out.mode}, {out.took_ms:.0f} ms).'
    )
    lines = [head]
    if out.partial:
        lines.append(
            f"Note: indexing is in progress ({out.percent:.0f}%): "
            "results cover only the files indexed so far."
        )
    if out.semantic_coverage < 1.0:
        lines.append(
            f"Note: {out.semantic_coverage:.0%} of the index has embeddings so far; keyword matches "
            "cover everything indexed, semantic matches fill in as embedding proceeds."
        )
    if not out.results:
        lines.append(f"No results{': ' + out.note if out.note else '.'}")
    for i, r in enumerate(out.results, 1):
        what = ", ".join(x for x in (r.kind, r.language) if x)
        symbol = f" {r.symbol}" if r.symbol else ""
        fence = _fence(r.content)
        lines.append("")
        lines.append(f"{i}. {r.path}:{r.start_line}-{r.end_line}")
        lines.append(f"  {symbol.strip() or '(module level)'} ({what}) score {r.score:.4f}")
        if r.context:
            lines.append(f"  in: {r.context.splitlines()[-1].strip()}")
        lines.append(f"{fence}{r.language if r.language not in ('', 'text') else ''}")
        width = len(str(r.end_line))
        lines.extend(f"{n:>{width}}  {text}" for n, text in enumerate(r.content.split("\n"), r.start_line))
        lines.append(fence)
    if out.truncated:
        lines.append("")
        lines.append(
            f"[Output cut to stay within about {out.max_tokens} tokens: the last result is shortened "
            "and/or further results were left out. Pass a larger maxTokens, a smaller limit, or filters.]"
        )
    return "\n".join(lines)


# -- server ---------------------------------------------------------------------------------------


def build_server(
    engine: Engine,
    *,
    cwd: Path | None = None,
    token_verifier: TokenVerifier | None = None,
    auth: AuthSettings | None = None,
    log_level: str = "WARNING",
) -> MCPServer:
    """An MCPServer with the six tools bound to ``engine``. Build it when serving, not at import."""
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

    def resolve(path: str) -> Path:
        if path is None or not str(path).strip():
            raise ToolError("path is empty: pass the absolute path of the codebase folder")
        p = Path(os.path.expanduser(str(path).strip()))
        if not p.is_absolute():
            p = base / p
        try:
            return p.resolve()
        except (OSError, RuntimeError) as exc:
            raise ToolError(f"cannot resolve path {path}: {exc}") from None

    def require_dir(p: Path, *, indexed_ok: bool = False) -> None:
        """A folder that exists; with ``indexed_ok`` a vanished folder that still has an index passes."""
        if p.is_dir():
            return
        if p.exists():
            raise ToolError(
                f"path is a file, not a folder: {p}. Pass the codebase folder "
                "(search_code's pathFilter narrows results to files)"
            )
        if indexed_ok:  # the folder is gone but its index is not: status and clear still work
            with _tool_errors(p):
                st = engine.status(p)
            if st.status != "not_indexed" and Path(st.root) == p:
                return
        raise ToolError(f"path does not exist: {p}")

    def current_status(p: Path) -> CodebaseStatus:
        """The store's status, corrected by a job this process runs that the store does not show yet."""
        st = engine.status(p)
        job = engine.job(st.root or p)
        if job is not None and job.running and st.status != "indexing":
            st.status, st.error = "indexing", ""
            if job.progress is not None:
                st.files_done, st.files_total = job.progress.files_done, job.progress.files_total
                st.chunks_done, st.percent = job.progress.chunks_done, job.progress.percent
            else:
                st.files_done = st.files_total = st.chunks_done = 0
                st.percent = 0.0
        return st

    # -- index_codebase ---------------------------------------------------------------------------
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
    ) -> Annotated[CallToolResult, IndexOutput]:
        p = resolve(path)
        require_dir(p)
        split = SPLITTERS.get(str(splitter).strip().lower())
        if split is None:
            raise ToolError(f"splitter must be 'ast' or 'text', not {splitter!r}")

        def start() -> tuple[Any, bool, str]:
            with _tool_errors(p):
                before = engine.status(p)  # a codebase that already contains p, if any
                outer = before.root if before.status != "not_indexed" and Path(before.root) != p else ""
                job, started = engine.start_index(
                    p,
                    force=force,
                    splitter=split,
                    ignore_patterns=list(ignorePatterns) or None,
                    extensions=list(customExtensions) or None,
                )
            if started:  # until the job shows in the store, another poller would see the old status
                deadline = time.monotonic() + START_WAIT_S
                while job.running and time.monotonic() < deadline:
                    if engine.status(p).status == "indexing":
                        break
                    time.sleep(0.02)
            return job, started, outer

        job, started, outer = await anyio.to_thread.run_sync(start)

        if wait:
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
                            f"{prog.phase}: {prog.files_done}/{prog.files_total} files, "
                            f"{prog.chunks_done} chunks",
                        )
                await anyio.sleep(POLL_S)
            if job.report is not None:  # a final 100%, so even a run shorter than one poll reports
                n = max(1, job.report.files_changed + job.report.files_deleted)
                await ctx.report_progress(
                    n, n, f"done: {job.report.files_total} files, {job.report.chunks_total} chunks"
                )

        if not job.running and job.error is not None:
            err = job.error
            raise ToolError(_error_message(err, p) or f"indexing failed: {type(err).__name__}: {err}")

        st = await anyio.to_thread.run_sync(current_status, p)
        report = job.report if not job.running else None
        out = IndexOutput(
            root=str(job.root),
            status=st.status,  # type: ignore[arg-type]
            started=started,
            waited=bool(wait),
            message="",
            percent=st.percent,
            files_done=st.files_done,
            files_total=st.files_total,
            chunks_done=st.chunks_done,
            files=st.files,
            chunks=st.chunks,
        )
        if report is not None:  # finished: waited for, or over before this call returned
            out.files_changed, out.chunks_embedded, out.seconds = (
                report.files_changed,
                report.chunks_embedded,
                report.seconds,
            )
            out.message = (
                f"Indexed {report.root}: {report.files_total} files, {report.chunks_total} chunks "
                f"({report.files_changed} changed, {report.files_deleted} deleted, {report.files_unchanged} "
                f"unchanged; {report.chunks_embedded} chunks embedded) in {report.seconds:.1f}s. "
                "Ready for search."
            )
        elif started:
            out.message = (
                f"Started background indexing of {job.root} ({'full re-index' if force else 'incremental'}, "
                f"{split} splitter). It returns at once: poll get_indexing_status for progress. search_code "
                "already works and covers what is indexed so far."
            )
        else:
            out.message = (
                f"{job.root} is already being indexed ({st.percent:.0f}%, "
                f"{st.files_done}/{st.files_total} files); "
                "not starting a second job"
                + (" (force is ignored while it runs)" if force else "")
                + ". Poll get_indexing_status for progress; search_code works meanwhile."
            )
        if outer:
            out.message += (
                f" Note: {p} lies inside the indexed codebase {outer}, which search_code can already "
                "search by subfolder; this folder now gets an index of its own."
            )
        return _result(out.message, out)

    # -- search_code ------------------------------------------------------------------------------
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
        path: Annotated[str, Field(description=path_help + " A subfolder restricts the search to it.")],
        query: Annotated[str, Field(description="What to find, in plain words and/or identifiers.")],
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
                json_schema_extra={"enum": list(MODES)},
            ),
        ] = "hybrid",
        maxTokens: Annotated[
            int | None,
            Field(
                description=f"Token budget for result contents (default {engine.config.token_budget}; "
                f"{MIN_TOKENS}-{MAX_TOKENS}).",
            ),
        ] = None,
    ) -> Annotated[CallToolResult, SearchOutput]:
        if mode not in MODES:
            raise ToolError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not 1 <= limit <= MAX_LIMIT:
            raise ToolError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        budget = engine.config.token_budget if maxTokens is None else maxTokens
        if not MIN_TOKENS <= budget <= MAX_TOKENS:
            raise ToolError(f"maxTokens must be between {MIN_TOKENS} and {MAX_TOKENS}, not {budget}")
        if not query or not query.strip():
            raise ToolError("query is empty: say what to look for")
        p = resolve(path)
        require_dir(p, indexed_ok=True)
        filters = SearchFilter(
            extensions=list(extensionFilter),
            include_globs=list(pathFilter),
            exclude_globs=list(excludePatterns),
            languages=list(languageFilter),
        )
        with _tool_errors(p):
            resp = engine.search(p, query, limit=limit, mode=mode, filters=filters, token_budget=budget)
            percent = current_status(Path(resp.root)).percent if resp.partial else 100.0
        out = SearchOutput(
            root=resp.root,
            subfolder=resp.subfolder,
            query=resp.query,
            mode=resp.mode,
            results=[
                SearchHit(
                    path=r.path,
                    start_line=r.start_line,
                    end_line=r.end_line,
                    language=r.language,
                    symbol=r.symbol,
                    kind=r.kind,
                    score=r.score,
                    content=r.content,
                    context=r.context,
                )
                for r in resp.results
            ],
            partial=resp.partial,
            percent=percent,
            truncated=resp.truncated,
            max_tokens=budget,
            note=resp.note,
            semantic_coverage=resp.semantic_coverage,
            took_ms=resp.took_ms,
        )
        return _result(_search_text(out), out)

    # -- clear_index ------------------------------------------------------------------------------
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
        p = resolve(path)
        require_dir(p, indexed_ok=True)
        with _tool_errors(p):
            job = engine.job(engine.status(p).root or p)
            running = job is not None and job.running
            root = engine.clear(p)
        message = f"Cleared the index of {root}" + (
            " (stopped the running indexing job first)." if running else "."
        )
        out = ClearOutput(root=root, cleared=True, stopped_job=running, message=message)
        return _result(message, out)

    # -- get_indexing_status ----------------------------------------------------------------------
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
        p = resolve(path)
        require_dir(p, indexed_ok=True)
        with _tool_errors(p):
            out = _status_model(current_status(p))
        return _result(_status_text(out), out)

    # -- list_codebases ---------------------------------------------------------------------------
    @server.tool(
        name="list_codebases",
        description="Every codebase that has an index here, with its status, size and last indexing time.",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    def list_codebases() -> Annotated[CallToolResult, ListOutput]:
        with _tool_errors():
            statuses = [current_status(Path(s.root)) if s.root else s for s in engine.list_codebases()]
        items = [
            CodebaseSummary(
                root=s.root,
                status=s.status,  # type: ignore[arg-type]
                percent=s.percent,
                files=s.files,
                chunks=s.chunks,
                size_bytes=s.size_bytes,
                last_indexed_at=_iso(s.last_indexed_at),
                error=s.error,
            )
            for s in statuses
        ]
        if not items:
            text = "No codebases are indexed yet. Call index_codebase with a codebase folder."
        else:
            text = f"{len(items)} indexed codebase(s):\n" + "\n".join(
                f"- {c.root}: {c.status}"
                + (f" {c.percent:.0f}%" if c.status == "indexing" else "")
                + f", {c.files} files, {c.chunks} chunks, {_human_bytes(c.size_bytes)}, "
                f"last indexed {c.last_indexed_at or 'never'}" + (f", error: {c.error}" if c.error else "")
                for c in items
            )
        return _result(text, ListOutput(codebases=items))

    # -- find_symbol ------------------------------------------------------------------------------
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
        limit: Annotated[int, Field(description="Maximum number of definitions (1-100).")] = 20,
    ) -> Annotated[CallToolResult, SymbolOutput]:
        if not name or not name.strip():
            raise ToolError("name is empty: pass the symbol name to look for")
        if not 1 <= limit <= 100:
            raise ToolError(f"limit must be between 1 and 100, not {limit}")
        p = resolve(path)
        require_dir(p, indexed_ok=True)
        with _tool_errors(p):
            rows = engine.find_symbol(p, name.strip(), kind or None, limit)
            root = engine.status(p).root
        hits = [SymbolHit(**{k: row[k] for k in SymbolHit.model_fields}) for row in rows]
        out = SymbolOutput(root=root, name=name.strip(), kind=kind or None, results=hits)
        if not hits:
            text = f'No definition named "{out.name}"' + (f" of kind {kind}" if kind else "") + f" in {root}."
        else:
            text = f'{len(hits)} definition(s) matching "{out.name}" in {root}:\n' + "\n".join(
                f"{i}. {h.path}:{h.start_line}-{h.end_line}  {h.symbol} ({h.kind}, {h.language})\n"
                f"   {h.signature}"
                for i, h in enumerate(hits, 1)
            )
        return _result(text, out)

    return server
