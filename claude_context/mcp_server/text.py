"""The text half of every MCP answer (the other half is ``structuredContent``): what the model reads."""

from __future__ import annotations

from claude_context.mcp_server.schemas import SearchOutput, StatusOutput
from claude_context.reports import human_bytes, semantic_note


def _fence(content: str) -> str:
    """A code fence longer than any backtick run in the content, so the block cannot break."""
    longest, run = 0, 0
    for ch in content:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def status_text(st: StatusOutput) -> str:
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
        f"{human_bytes(st.size_bytes)} on disk; last indexed {st.last_indexed_at or 'never'}"
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
    if st.note:
        lines.append(f"Note: {st.note}; call index_codebase to apply it.")
    return "\n".join(lines)


def search_text(out: SearchOutput) -> str:
    several = len(out.roots) > 1
    where = out.root + (f" (subfolder {out.subfolder})" if out.subfolder else "")
    if several:
        where = f"{len(out.roots)} codebases ({', '.join(out.roots)})"
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
        lines.append(f"Note: {semantic_note(out.semantic_coverage)}.")
    if not out.results:
        lines.append(f"No results{': ' + out.note if out.note else '.'}")
    for i, r in enumerate(out.results, out.offset + 1):
        what = ", ".join(x for x in (r.kind, r.language) if x)
        symbol = f" {r.symbol}" if r.symbol else ""
        fence = _fence(r.content)
        lines.append("")
        lines.append(f"{i}. {r.path}:{r.start_line}-{r.end_line}" + (f"  in {r.root}" if several else ""))
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
