"""Command line: a thin shell over ``Engine`` (every command maps to one engine call)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from claude_context import __version__
from claude_context.cli.output import (
    err,
    out,
    print_error,
    print_list,
    print_lookup,
    print_search,
    print_statuses,
)
from claude_context.config import MAX_LIMIT, MAX_OFFSET, Config, load_config
from claude_context.errors import ClaudeContextError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Local semantic code search: index a repository, then search it in natural language.",
)

PathArg = Annotated[Path, typer.Argument(help="Root folder of the codebase (or a folder inside it).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (see README).")]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        help="Embedding backend: auto, torch, onnx or onnx-int8 (auto: onnx-int8 on CPU, torch on CUDA). "
        "Switching re-embeds the index."
    ),
]
DeviceOpt = Annotated[str | None, typer.Option(help="Model device: auto, cpu, cuda, cuda:N or mps.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    print_error(message)
    return typer.Exit(code)


def _config(**flags: object) -> Config:
    return _run(lambda: load_config(**flags))


def _engine(cfg: Config):
    from claude_context.engine import Engine

    return Engine(cfg)


def _run(fn):
    """Run an engine call; user-facing errors become one line and a non-zero exit code (the one
    place the CLI maps ``ClaudeContextError``)."""
    from claude_context.errors import IndexCancelled

    try:
        return fn()
    except IndexCancelled:
        raise _fail("cancelled", IndexCancelled.exit_code) from None
    except ClaudeContextError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        raise _fail("interrupted", 130) from None
    except Exception as exc:  # a storage fault (disk full, read-only, damaged) is a sentence too
        from claude_context.faults import classify

        mapped = classify(exc)
        if mapped is None:
            raise  # a bug: keep its traceback
        raise _fail(str(mapped), mapped.exit_code) from None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"claude-context {__version__}")
        raise typer.Exit(0)


@contextlib.contextmanager
def _progress_bar():
    """A progress bar on stderr; yields the ``progress`` callback for ``Engine.index``."""
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(
        TextColumn("[bold]{task.fields[phase]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} files"),
        TextColumn("{task.fields[chunks]} chunks"),
        TextColumn("{task.fields[rate]} chunks/s"),
        TextColumn("{task.fields[eta]}"),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("index", total=None, phase="scanning", chunks=0, rate="-", eta="")

        def on_progress(p) -> None:
            # chunks: with vectors / keyword-searchable; rate and ETA: vectors (the model's pace)
            staged = f"/{p.chunks_staged}" if p.chunks_staged > p.chunks_done else ""
            bar.update(
                task,
                total=p.files_total or None,
                completed=p.files_done,
                phase=p.phase,
                chunks=f"{p.chunks_done}{staged}",
                rate=f"{p.rate or p.chunks_per_s:.0f}",
                eta=f"ETA {_duration(p.eta_s)}" if p.eta_s else "",
            )

        yield on_progress


@app.command()
def index(
    path: PathArg,
    force: Annotated[
        bool, typer.Option("--force", help="Re-chunk every file (embeddings still come from the cache).")
    ] = False,
    splitter: Annotated[str | None, typer.Option(help="ast (tree-sitter) or text (line windows).")] = None,
    ignore: Annotated[
        list[str] | None, typer.Option("--ignore", help="Extra gitignore-style pattern (repeatable).")
    ] = None,
    ext: Annotated[
        list[str] | None, typer.Option("--ext", help="Extra file extension to index (repeatable).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Embedding model name or local path.")] = None,
    quantization: Annotated[
        str | None, typer.Option(help="Vector index: none, int8, rabitq or auto (remembered per codebase).")
    ] = None,
    store: Annotated[str | None, typer.Option(help="Where vectors live: local or milvus.")] = None,
    milvus_uri: Annotated[
        str | None, typer.Option(help="Milvus URI: a .db file (Milvus Lite) or http(s)://")
    ] = None,
    milvus_token: Annotated[str | None, typer.Option(help="Milvus / Zilliz Cloud token.")] = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait if another process is indexing this codebase.")
    ] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonOpt = False,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Index (or incrementally re-index) a codebase."""
    cfg = _config(
        model=model, milvus_uri=milvus_uri, milvus_token=milvus_token, backend=backend, device=device
    )
    engine = _engine(cfg)
    kwargs = dict(
        force=force,
        splitter=splitter,
        ignore_patterns=ignore,
        extensions=ext,
        lock_timeout=wait,
        quantization=quantization,
        store_kind=store,
    )
    show = not quiet and not as_json and err.is_terminal

    def work():
        if not show:
            return engine.index(path, **kwargs)
        with _progress_bar() as on_progress:
            return engine.index(path, progress=on_progress, **kwargs)

    report = _run(work)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    r = report
    if r.note:
        out.print(f"[yellow]note: {escape(r.note)}[/yellow]")
    out.print(
        f"indexed [bold]{escape(r.root)}[/bold]: {r.files_total} files, {r.chunks_total} chunks "
        f"({r.files_changed} changed, {r.files_deleted} deleted, {r.files_unchanged} unchanged; "
        f"{r.chunks_embedded} chunks embedded) in {r.seconds:.2f}s"
    )
    if report.skipped and not quiet:
        reasons: dict[str, int] = {}
        for s in report.skipped:
            reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
        out.print("skipped: " + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())))


@app.command()
def search(
    words: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH... QUESTION",
            help="Codebase root(s) (or folders inside one), then what you are looking for; with --all "
            "only the question.",
        ),
    ],
    all_: Annotated[
        bool, typer.Option("--all", help="Search every indexed codebase, in one ranking.")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=MAX_LIMIT, help="Results to return.")
    ] = 10,
    offset: Annotated[
        int, typer.Option(min=0, max=MAX_OFFSET, help="Skip this many results (the next page).")
    ] = 0,
    mode: Annotated[str | None, typer.Option(help="hybrid (default), semantic or keyword.")] = None,
    ext: Annotated[
        list[str] | None, typer.Option("--ext", help="Only these extensions, e.g. .py (repeatable).")
    ] = None,
    include: Annotated[
        list[str] | None, typer.Option("--path", help="Only paths matching this glob (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Skip paths matching this glob (repeatable).")
    ] = None,
    language: Annotated[
        list[str] | None, typer.Option("--language", help="Only this language (repeatable).")
    ] = None,
    lines: Annotated[int, typer.Option(help="Lines of each result to print (0 = all).")] = 12,
    as_json: JsonOpt = False,
) -> None:
    """Search indexed codebases: one, several (one ranking; each result names its root), or --all."""
    *paths, query = words
    if all_ and paths:
        raise _fail("give codebase paths or --all, not both", 2)
    if not all_ and not paths:
        raise _fail("give a codebase PATH before the question (several, or --all, search more)", 2)
    cfg = _config()
    filters = dict(
        extensions=list(ext or []),
        include_globs=list(include or []),
        exclude_globs=list(exclude or []),
        languages=list(language or []),
    )
    resp = None
    if len(paths) == 1 and not offset:
        resp = _served_search(cfg, Path(paths[0]), query, limit, mode, filters)
    if resp is None:
        from claude_context.records import SearchFilter

        engine = _engine(cfg)
        target = None if all_ else paths[0] if len(paths) == 1 else paths
        resp = _run(
            lambda: engine.search(
                target, query, limit=limit, mode=mode, filters=SearchFilter(**filters), offset=offset
            )
        )
    print_search(resp, lines, as_json)


def _served_search(cfg: Config, path: Path, query: str, limit: int, mode: str | None, filters: dict):
    """The answer of a running server or watcher of this home (``fastpath``), None if there is none."""
    from claude_context import fastpath

    body = dict(path=fastpath.absolute(path), query=query, limit=limit, mode=mode, filters=filters)
    return _run(lambda: fastpath.search(cfg, body))


def _statuses(path: Path | None) -> list:
    """Status of ``path`` (or of every codebase), from a running server if there is one."""
    from claude_context import fastpath

    cfg = _config()
    served = _run(lambda: fastpath.statuses(cfg, fastpath.absolute(path) if path else None))
    if served is not None:
        return served
    engine = _engine(cfg)
    return _run(lambda: [engine.status(path)] if path is not None else engine.list_codebases())


@app.command()
def status(
    path: Annotated[Path | None, typer.Argument(help="Codebase root; omit for all codebases.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the index status of one codebase (or all)."""
    statuses = _statuses(path)
    print_statuses(statuses, path is not None, as_json)


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List every indexed codebase."""
    statuses = _statuses(None)
    print_list(statuses, as_json)


@app.command()
def clear(path: PathArg, as_json: JsonOpt = False) -> None:
    """Delete a codebase's index (the shared embedding cache is kept)."""
    engine = _engine(_config())
    root = _run(lambda: engine.clear(path))
    if as_json:
        out.print_json(json.dumps({"cleared": root}))
    else:
        out.print(f"cleared the index of {escape(root)}")


@app.command()
def serve(
    transport: Annotated[
        str, typer.Option(help="stdio (for editors and agents) or http (streamable HTTP).")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="HTTP: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP: port to listen on.")] = 8765,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="HTTP: allow a non-loopback address without CLAUDE_CONTEXT_TOKEN."
        ),
    ] = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option("--allowed-host", help="HTTP: extra Host name clients use (repeatable)."),
    ] = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    watch: Annotated[
        bool | None,
        typer.Option(
            "--watch/--no-watch",
            help="Keep every indexed codebase fresh by watching its files (default on; "
            "CLAUDE_CONTEXT_WATCH=0 turns it off).",
        ),
    ] = None,
) -> None:
    """Run the MCP server (tools: index_codebase, search_code, get_indexing_status, ...)."""
    import os

    _config(backend=backend, device=device)  # a bad value fails here, before the server starts
    for name, value in (("BACKEND", backend), ("DEVICE", device)):
        if value:  # the server's config reads the environment layer
            os.environ[f"CLAUDE_CONTEXT_{name}"] = value
    if watch is not None:
        os.environ["CLAUDE_CONTEXT_WATCH"] = "1" if watch else "0"
    from claude_context.mcp_server.run import serve as run_server

    def go() -> int:
        try:
            hosts = list(allowed_host or [])
            run_server(transport, host, port, allow_remote=allow_remote, allowed_hosts=hosts)
        except KeyboardInterrupt:
            return 130
        return 0

    code = _run(go)
    if code:
        raise typer.Exit(code)


def _indexed_first(engine, paths: list[Path], quiet: bool) -> list[Path]:
    """The roots of ``paths``, each indexed first if it is not (or has an unfinished index, or one
    chunked by an older chunker: after an upgrade, as the server does at start)."""
    roots: list[Path] = []
    for path in paths:
        st = _run(lambda p=path: engine.status(p))
        if st.status in ("not_indexed", "failed"):  # failed: an interrupted run is resumed first
            if not quiet:
                what = "is not indexed yet" if st.status == "not_indexed" else "has an unfinished index"
                err.print(f"{escape(str(path))} {what}: indexing it first")
            target = path if st.status == "not_indexed" else Path(st.root)
            report = _run(lambda p=target: engine.index(p))
            if not quiet:
                out.print(
                    f"indexed [bold]{escape(report.root)}[/bold]: {report.files_total} files, "
                    f"{report.chunks_total} chunks in {report.seconds:.2f}s"
                )
            roots.append(Path(report.root))
        else:
            if st.note:  # chunked by an older chunker: the watcher alone would only re-chunk edits
                if not quiet:
                    err.print(f"{escape(str(path))}: {escape(st.note)}: re-chunking it first")
                _run(lambda p=Path(st.root): engine.index(p))
            roots.append(Path(st.root))
    return roots


@app.command()
def watch(
    paths: Annotated[
        list[Path], typer.Argument(help="Codebase roots to keep fresh (indexed first if they are not yet).")
    ],
    debounce: Annotated[
        float | None, typer.Option(help="Seconds of quiet after the last file event before updating.")
    ] = None,
    poll: Annotated[
        bool, typer.Option("--poll", help="Scan periodically instead of using file events.")
    ] = False,
    poll_interval: Annotated[float | None, typer.Option(help="Seconds between scans when polling.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line per update.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per update (JSON lines).")] = False,
) -> None:
    """Watch codebases and update their indexes as files change, until interrupted."""
    import faulthandler
    import signal
    import threading

    from claude_context.watcher import WatchService, format_update

    cfg = _config()
    engine = _engine(cfg)
    roots = _indexed_first(engine, paths, quiet)

    def on_update(root: Path, report) -> None:
        if as_json:
            typer.echo(json.dumps({"root": str(root), "time": time.time(), **report.to_dict()}))
        elif not quiet:
            out.print(escape(format_update(root, report)))

    def on_state(root: Path, state: str, message: str) -> None:
        if quiet and state != "error":
            return
        color = {"error": "red", "polling": "yellow"}.get(state, "dim")
        tail = f": {escape(message)}" if message else ""
        err.print(f"[{color}]{escape(root.name)}: {state}{tail}[/{color}]")

    service = WatchService(
        engine,
        roots,
        debounce=debounce if debounce is not None else cfg.watch_debounce,
        poll_interval=poll_interval if poll_interval is not None else cfg.watch_poll_interval,
        polling=poll,
        on_update=on_update,
        on_state=on_state,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(AttributeError, ValueError):  # no SIGUSR1 on Windows
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: where is it stuck?
    service.start()
    endpoint = _endpoint(engine)  # `claude-context search` / `status` answer through this process
    if not quiet and not as_json:
        err.print(f"watching {', '.join(escape(str(r)) for r in roots)} (Ctrl-C to stop)")
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        # a second Ctrl-C while stopping quits at once (unsaved vectors are rebuilt next start)
        signal.signal(signal.SIGINT, lambda *_: os._exit(130))
        if endpoint is not None:
            endpoint.stop()
        service.stop()  # saves the vector indexes the updates left unsaved
        engine.close()


def _endpoint(engine):
    """Offer the CLI fast path (``fastpath.Endpoint``); None if it cannot start (nothing breaks)."""
    from claude_context.fastpath import Endpoint

    try:
        return Endpoint(engine).start()
    except OSError as exc:
        err.print(f"[yellow]note: no fast path for the CLI: {escape(str(exc))}[/yellow]")
        return None


@app.command()
def refs(
    name: Annotated[str, typer.Argument(help="The name used: a function, class, type or variable.")],
    path: Annotated[Path, typer.Argument(help="Codebase root (or a folder inside it).")] = Path("."),
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=200, help="Items to list.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many items (the next page).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Where NAME is defined (first) and used: call sites, imports, type uses, arguments."""
    engine = _engine(_config())
    print_lookup(_run(lambda: engine.references(path, name, limit=limit, offset=offset)), as_json)


@app.command()
def symbol(
    name: Annotated[str, typer.Argument(help="Symbol name (e.g. load) or dotted path (Config.load).")],
    path: Annotated[Path, typer.Argument(help="Codebase root (or a folder inside it).")] = Path("."),
    kind: Annotated[str | None, typer.Option(help="Only this kind: function, method, class, ...")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100, help="Definitions to list.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many definitions (the next page).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Find definitions by name (exact matches first, then names starting with it)."""
    engine = _engine(_config())
    print_lookup(_run(lambda: engine.symbols(path, name, kind, limit=limit, offset=offset)), as_json)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Project root to write the instruction file(s) in.")] = Path(
        "."
    ),
    agent: Annotated[
        list[str] | None,
        typer.Option(help="claude (CLAUDE.md), cursor, codex (AGENTS.md), copilot or gemini (repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tell coding agents when to use claude-context: a short snippet in their instruction file,
    between markers (run again to update it; your own text is never touched)."""
    from claude_context.agents import install

    root = _run(lambda: _folder(path))
    done = [_run(lambda a=a: install(root, a)) for a in (agent or ["claude"])]
    if as_json:
        out.print_json(
            json.dumps([{"agent": d.agent, "path": str(d.path), "action": d.action} for d in done])
        )
        return
    for d in done:
        out.print(f"{d.action} {escape(str(d.path))} ({d.agent})")


def _folder(path: Path) -> Path:
    from claude_context.errors import UserError

    if not path.is_dir():
        raise UserError(f"not a folder: {path}")
    return path.resolve()
