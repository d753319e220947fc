"""What the CLI prints for search, status and list: shared by the typer commands and the fast
path (``cli/fast.py``), so an answer looks the same whichever process computed it. Imports rich
only (no typer, no engine)."""

from __future__ import annotations

import json
from datetime import datetime

from rich.console import Console
from rich.markup import escape

from claude_context.reports import human_bytes, semantic_note

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def print_error(message: str) -> None:
    """An error as the CLI shows every error: one line on stderr."""
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)  # one line, whatever the width


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "never"


def print_search(resp, lines: int, as_json: bool) -> None:
    """A ``SearchResponse``: JSON, or numbered lines of each result."""
    if as_json:
        out.print_json(json.dumps(resp.to_dict()))
        return
    if resp.partial:
        out.print("[yellow]note: indexing is still running; results cover what is indexed so far[/yellow]")
    if resp.semantic_coverage < 1.0:
        out.print(f"[yellow]note: {escape(semantic_note(resp.semantic_coverage))}[/yellow]")
    if not resp.results:
        out.print(f"no results{': ' + resp.note if resp.note else ''}")
    several = len(resp.roots) > 1
    for i, r in enumerate(resp.results, resp.offset + 1):
        symbol = f"  [cyan]{escape(r.symbol)}[/cyan]" if r.symbol else ""
        where = f"  [dim]in {escape(r.root)}[/dim]" if several else ""
        out.print(
            f"[bold]{i}. {escape(r.path)}:{r.start_line}-{r.end_line}[/bold]{symbol}  "
            f"({r.kind}, {r.language})  score {r.score:.4f}{where}"
        )
        body = r.content.split("\n")
        shown = body if lines <= 0 else body[:lines]
        width = len(str(r.start_line + len(shown)))
        for n, line in enumerate(shown, r.start_line):
            out.print(f"  [dim]{n:>{width}}[/dim] {escape(line)}")
        if len(shown) < len(body):
            out.print(f"  [dim]... {len(body) - len(shown)} more lines[/dim]")
    more = f"; more with --offset {resp.next_offset}" if resp.has_more else ""
    out.print(f"[dim]{len(resp.results)} results in {resp.took_ms:.0f} ms ({resp.mode}){more}[/dim]")


def print_lookup(resp, as_json: bool) -> None:
    """A page of definitions (``symbol``) or of references (``refs``): JSON, or one line each."""
    if as_json:
        out.print_json(json.dumps(resp.to_dict()))
        return
    if not resp.results:
        out.print(f"nothing found for {escape(resp.name)}" + (f": {escape(resp.note)}" if resp.note else ""))
    for i, r in enumerate(resp.results, resp.offset + 1):
        if hasattr(r, "line"):  # a reference (or the definition, listed first)
            label = (
                f"[cyan]{r.kind}[/cyan]" if r.kind != "definition" else "[bold cyan]definition[/bold cyan]"
            )
            out.print(f"{i}. [bold]{escape(r.path)}:{r.line}[/bold]  {label}  {escape(r.context)}")
        else:
            out.print(
                f"{i}. [bold]{escape(r.path)}:{r.start_line}-{r.end_line}[/bold]  "
                f"[cyan]{escape(r.symbol)}[/cyan]  ({r.kind}, {r.language})\n   {escape(r.signature)}"
            )
    if resp.results and resp.note:
        out.print(f"[yellow]note: {escape(resp.note)}[/yellow]")
    if resp.has_more:
        out.print(f"[dim]more with --offset {resp.next_offset}[/dim]")


def print_statuses(statuses: list, one: bool, as_json: bool) -> None:
    """``status``: one codebase (``one``) or all."""
    if as_json:
        data = [s.to_dict() for s in statuses]
        out.print_json(json.dumps(data[0] if one else data))
        return
    if not statuses:
        out.print("no codebases indexed yet")
    for s in statuses:
        out.print(f"[bold]{escape(s.root)}[/bold]: {s.status}")
        if s.status == "not_indexed":
            continue
        if s.status == "indexing":
            out.print(
                f"  progress: {s.percent:.1f}% ({s.files_done}/{s.files_total} files, {s.chunks_done} chunks)"
            )
        if s.error:
            out.print(f"  [red]error:[/red] {escape(s.error)}")
        out.print(f"  files: {s.files} indexed, {s.skipped_files} skipped; chunks: {s.chunks}")
        if s.note:
            out.print(f"  [yellow]note:[/yellow] {escape(s.note)}")
        out.print(
            f"  last indexed: {when(s.last_indexed_at)}; model: {s.model}; "
            f"on disk: {human_bytes(s.size_bytes)}"
        )
        who = f" (pid {s.watcher_pid})" if s.watcher_pid else ""
        why = f": {escape(s.watcher_message)}" if s.watcher_message else ""
        state = s.watcher if s.watcher != "off" else "off (no live watcher)"
        color = "red" if s.watcher == "error" else "yellow" if s.watcher == "polling" else ""
        state = f"[{color}]{state}[/{color}]" if color else state
        out.print(f"  watcher: {state}{who}{why}; last change applied: {when(s.last_change_at)}")
        if s.index:
            out.print(
                f"  vector index: {s.index.get('vector_index')}, {s.index.get('vectors')} vectors, "
                f"{human_bytes(int(s.index.get('vector_index_bytes', 0) or 0))} resident"
            )
            details = s.index.get("vector_index_details")
            if isinstance(details, dict) and details.get("mode"):
                out.print(f"  vector search: {escape(str(details['mode']))}")
            if s.index.get("store") == "milvus":
                if s.index.get("available"):
                    where = f"{s.index.get('server')} at {s.index.get('uri')}"
                    out.print(f"  store: {escape(where)}, collection {s.index.get('collection')}")
                else:
                    out.print(f"  store: [red]unavailable[/red]: {escape(str(s.index.get('error')))}")


def print_list(statuses: list, as_json: bool) -> None:
    """``list``: one line per codebase."""
    if as_json:
        out.print_json(json.dumps([s.to_dict() for s in statuses]))
        return
    if not statuses:
        out.print("no codebases indexed yet")
    for s in statuses:
        out.print(
            f"{escape(s.root)}  {s.status}  {s.files} files  {s.chunks} chunks  "
            f"{human_bytes(s.size_bytes)}  last indexed {when(s.last_indexed_at)}"
        )
